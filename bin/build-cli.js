#!/usr/bin/env node
// Compiles src/ into dist/ for bin/pgshift.js: into a fresh directory, swapped in only when tsc succeeded,
// with a stamp of when the build STARTED. A source saved while tsc runs is newer than the stamp, so the
// stale check sees it; a file moved or deleted in src/ leaves nothing behind in dist/.
'use strict';
const { execFileSync } = require('node:child_process');
const { renameSync, rmSync, writeFileSync, utimesSync } = require('node:fs');
const { join } = require('node:path');

const ROOT = join(__dirname, '..');
const DIST = join(ROOT, 'dist');
const NEXT = join(ROOT, 'dist.next');
const { STAMP } = require('./stale-build');

function build() {
  const started = new Date();
  rmSync(NEXT, { recursive: true, force: true });
  const tsc = require.resolve('typescript/bin/tsc');
  execFileSync(process.execPath, [tsc, '-p', 'tsconfig.build.json', '--outDir', NEXT], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const stamp = join(NEXT, STAMP);
  writeFileSync(stamp, `${started.toISOString()}\n`);
  utimesSync(stamp, started, started);
  rmSync(DIST, { recursive: true, force: true });
  renameSync(NEXT, DIST);
}

module.exports = { build };

if (require.main === module) {
  try {
    build();
  } catch (err) {
    process.stderr.write(`${err.stdout ?? ''}${err.stderr ?? ''}`);
    process.stderr.write('pgshift: the CLI build failed; bin/pgshift.js runs the sources through tsx.\n');
    process.exit(1);
  }
}
