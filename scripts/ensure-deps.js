#!/usr/bin/env node
// Makes a checkout ready to run: installs node_modules and generates the Prisma client when they
// are missing or stale. Plain Node, no dependencies (it runs before node_modules exists).
// Used by `npm test` and `npm start`; cheap when there is nothing to do.
//
//  1. `npm ci --no-audit --no-fund` when node_modules is missing, or package-lock.json is newer
//     than node_modules/.package-lock.json (the copy npm writes after every install), i.e. the
//     lock file changed (git pull, branch switch) since the last install.
//  2. `node scripts/prisma-generate.js` when libs/db/src/generated/prisma/client.ts is missing,
//     or prisma/schema.prisma is newer than it, or step 1 reinstalled (the prisma version may
//     have changed).
'use strict';

const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const rel = (p) => path.join(root, p);
const log = (msg) => console.log(`[ensure-deps] ${msg}`);

function mtime(p) {
  try {
    return fs.statSync(p).mtimeMs;
  } catch {
    return null;
  }
}

function run(cmd, args, env = process.env) {
  log(`running: ${cmd} ${args.join(' ')}`);
  const result = spawnSync(cmd, args, { cwd: root, stdio: 'inherit', env });
  if (result.error) {
    console.error(`[ensure-deps] could not run ${cmd}: ${result.error.message}`);
    process.exit(1);
  }
  if (result.status !== 0) {
    console.error(`[ensure-deps] ${cmd} ${args.join(' ')} failed (exit ${result.status ?? result.signal})`);
    process.exit(result.status || 1);
  }
}

// 1. node_modules
const lock = mtime(rel('package-lock.json'));
const installed = mtime(rel('node_modules/.package-lock.json'));
let reinstalled = false;
let why = null;
if (!fs.existsSync(rel('node_modules'))) why = 'node_modules is missing';
else if (installed === null) why = 'node_modules/.package-lock.json is missing';
else if (lock !== null && lock > installed) why = 'package-lock.json is newer than node_modules';

if (why) {
  log(`${why}: installing dependencies`);
  const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
  // @prisma/engines' postinstall tries to download the native schema engine from a host we cannot
  // reach; it fails silently, but these variables make it skip the attempt and the telemetry check.
  run(npm, ['ci', '--no-audit', '--no-fund'], {
    ...process.env,
    PRISMA_SCHEMA_ENGINE_BINARY: process.env.PRISMA_SCHEMA_ENGINE_BINARY || process.execPath,
    CHECKPOINT_DISABLE: '1',
    PRISMA_HIDE_UPDATE_MESSAGE: '1',
  });
  reinstalled = true;
} else {
  log('node_modules is up to date with package-lock.json');
}

// 2. Prisma client
const client = mtime(rel('libs/db/src/generated/prisma/client.ts'));
const schema = mtime(rel('prisma/schema.prisma'));
why = null;
if (client === null) why = 'libs/db/src/generated/prisma is missing';
else if (schema !== null && schema > client) why = 'prisma/schema.prisma is newer than the generated client';
else if (reinstalled) why = 'dependencies were reinstalled';

if (why) {
  log(`${why}: generating the Prisma client`);
  run(process.execPath, [rel('scripts/prisma-generate.js')]);
} else {
  log('Prisma client is up to date with prisma/schema.prisma');
}
