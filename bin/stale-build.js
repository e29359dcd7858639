// Whether dist/ is older than src/: bin/pgshift.js runs the sources through tsx rather than stale code.
'use strict';
const { readdirSync, statSync } = require('node:fs');
const { join } = require('node:path');

const SRC = join(__dirname, '..', 'src');
const DIST = join(__dirname, '..', 'dist');
/** Written by bin/build-cli.js, dated when that build started. */
const STAMP = '.build-started';

function mtimeOf(path) {
  try {
    return statSync(path).mtimeMs;
  } catch {
    return undefined;
  }
}

/** What makes dist/ stale: the first src/ entry changed since the build started, or 'no build yet'. */
function staleSource() {
  const built = mtimeOf(join(DIST, STAMP));
  const src = mtimeOf(SRC);
  if (src === undefined) return undefined; // an installed copy without its sources: dist/ is all there is
  if (built === undefined) return 'no build yet';
  if (src > built) return 'src/';
  return newerThan(built, '');
}

function newerThan(built, rel) {
  let entries;
  try {
    entries = readdirSync(join(SRC, rel), { withFileTypes: true });
  } catch {
    return undefined; // an installed copy without its sources: dist/ is all there is
  }
  for (const entry of entries) {
    const path = rel ? `${rel}/${entry.name}` : entry.name;
    if (entry.isDirectory()) {
      // A directory's mtime moves when a file in it is added, removed or renamed.
      if (mtimeOf(join(SRC, path)) > built) return `src/${path}/`;
      const stale = newerThan(built, path);
      if (stale) return stale;
    } else if (mtimeOf(join(SRC, path)) > built) {
      return `src/${path}`;
    }
  }
  return undefined;
}

module.exports = { staleSource, STAMP };
