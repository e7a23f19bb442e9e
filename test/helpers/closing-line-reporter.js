// Prints the run's result as one plain closing line, `tests: N passed, N failed, N skipped`,
// after jest's own summary. CI machines read that line to tell a run that tested something from
// one that ran no test (jest's "Tests: 547 passed, 547 total" is not a format they know).
class ClosingLineReporter {
  onRunComplete(_contexts, results) {
    const skipped = results.numPendingTests + results.numTodoTests;
    process.stderr.write(`tests: ${results.numPassedTests} passed, ${results.numFailedTests} failed, ${skipped} skipped\n`);
  }
}

module.exports = ClosingLineReporter;
