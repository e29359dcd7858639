#!/usr/bin/env node
// Runs the compiled CLI in dist/ (`npm run build`, which `npm ci` runs as `prepare`), which starts in a
// fraction of a second. A source in src/ newer than its compiled file (edited since the last build), or no
// build at all, runs the sources through tsx instead: slower, but never stale code.
'use strict';
const { staleSource } = require('./stale-build');

const stale = staleSource();
if (stale === undefined) {
  require('../dist/client/cli.js');
} else {
  if (process.stderr.isTTY) {
    process.stderr.write(
      `pgshift: the compiled CLI is out of date (${stale}); running the sources through tsx (slow start). ` +
        '`npm run build` makes it fast again.\n',
    );
  }
  // Both of tsx's hooks: the CLI's lazy `import()`s go through Node's ESM loader.
  import('tsx/esm').then(() => {
    require('tsx/cjs');
    require('../src/client/cli.ts');
  });
}
