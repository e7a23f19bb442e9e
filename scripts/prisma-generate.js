#!/usr/bin/env node
// Runs `prisma generate` (schema prisma/schema.prisma, config prisma.config.ts) so that it works
// offline. Plain Node, no dependencies: used by scripts/ensure-deps.js, `npm run prisma:generate`
// and the Dockerfile.
//
// Why the environment below:
// - Prisma 7's CLI checks for its native schema engine before any command and, when it is
//   missing, downloads it from Prisma's binaries host, which is unreachable on our machines and in
//   CI ("getaddrinfo ENOTFOUND binaries.prisma.sh"). `generate` never runs that engine, so
//   PRISMA_SCHEMA_ENGINE_BINARY may point at any existing file; we use the node binary. An
//   explicit value from the caller wins.
// - CHECKPOINT_DISABLE=1 turns off the version/telemetry check, PRISMA_HIDE_UPDATE_MESSAGE=1 the
//   update banner; both would otherwise try the network.
//
// The local CLI (node_modules/prisma) is run directly rather than through `npx prisma`, so that a
// missing install fails at once instead of npx trying to fetch the newest prisma from the registry.
// Extra arguments are passed on, e.g. `node scripts/prisma-generate.js --no-hints`.
'use strict';

const { spawnSync } = require('node:child_process');
const path = require('node:path');

const root = path.resolve(__dirname, '..');

let cli;
try {
  cli = require.resolve('prisma/build/index.js', { paths: [root] });
} catch {
  console.error('[prisma-generate] prisma is not installed in node_modules; run `npm ci` first');
  process.exit(1);
}

const env = {
  ...process.env,
  PRISMA_SCHEMA_ENGINE_BINARY: process.env.PRISMA_SCHEMA_ENGINE_BINARY || process.execPath,
  PRISMA_HIDE_UPDATE_MESSAGE: '1',
  CHECKPOINT_DISABLE: '1',
};

console.log('[prisma-generate] prisma generate (offline: schema engine download skipped)');
const result = spawnSync(process.execPath, [cli, 'generate', ...process.argv.slice(2)], {
  cwd: root,
  env,
  stdio: 'inherit',
});
if (result.error) {
  console.error(`[prisma-generate] could not run prisma: ${result.error.message}`);
  process.exit(1);
}
process.exit(result.status === null ? 1 : result.status);
