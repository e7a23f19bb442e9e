// Preloaded into the chaos ingestors (NODE_OPTIONS=--require): remembers where each pg promise was
// created and, on an unhandled rejection, prints that origin before exiting 1 (what Node does anyway).
const pg = require('pg');
const origins = new WeakMap();
for (const proto of [pg.Client.prototype, pg.Pool.prototype]) {
  const orig = proto.query;
  proto.query = function (...args) {
    const r = orig.apply(this, args);
    if (r && typeof r.then === 'function') origins.set(r, new Error('query issued at').stack + '\nSQL: ' + String((args[0] && args[0].text) || args[0]).slice(0, 100));
    return r;
  };
}
const origConnect = pg.Pool.prototype.connect;
pg.Pool.prototype.connect = function (...args) {
  const r = origConnect.apply(this, args);
  if (r && typeof r.then === 'function') origins.set(r, new Error('pool.connect at').stack);
  return r;
};
process.on('unhandledRejection', (reason, p) => {
  console.error('UNHANDLED REJECTION', reason && reason.message, '\n', origins.get(p) || 'origin unknown (a derived promise)', '\n', reason && reason.stack);
  process.exit(1);
});
