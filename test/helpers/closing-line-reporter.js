// Prints the run's result as plain closing lines, the very last lines jest writes. CI machines read
// them to tell a run that tested something from one that ran no test; jest's own
// "Tests: 547 passed, 547 total" is not a format they know.
//
// Two forms: node's test runner summary (`# tests N`, `# pass N`, `# fail N`, `# skipped N`), a
// runner the machines know, and then the plain `N passed, N failed, N skipped` line as the very last.
// Written to stdout (jest writes everything else to stderr; a reader of stdout alone sees these)
// when the process exits, because jest prints its own summary after custom reporters run. Writes
// to pipes and files are synchronous in node, so nothing is lost at exit.
class ClosingLineReporter {
  onRunComplete(_contexts, results) {
    const passed = results.numPassedTests;
    const failed = results.numFailedTests;
    const skipped = results.numPendingTests + results.numTodoTests;
    const lines = [
      `# tests ${passed + failed + skipped}`,
      `# pass ${passed}`,
      `# fail ${failed}`,
      `# skipped ${skipped}`,
      `${passed} passed, ${failed} failed, ${skipped} skipped`,
    ];
    process.once('exit', () => process.stdout.write(`${lines.join('\n')}\n`));
  }
}

module.exports = ClosingLineReporter;
