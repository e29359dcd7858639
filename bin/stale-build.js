// Whether dist/ is older than src/: bin/pgshift.js runs the sources through tsx rather than stale code.
'use strict';
const { readdirSync, statSync } = require('node:fs');
const { join } = require('node:path');

const SRC = join(__dirname, '..', 'src');
const DIST = join(__dirname, '..', 'dist');

function mtimeOf(path) {
  try {
    return statSync(path).mtimeMs;
  } catch {
    return undefined;
  }
}

/** The first src/ file (relative path) whose dist/ counterpart is missing or older; undefined if none. */
function staleSource(rel = '') {
  let entries;
  try {
    entries = readdirSync(join(SRC, rel), { withFileTypes: true });
  } catch {
    return undefined; // an installed copy without its sources: dist/ is all there is
  }
  for (const entry of entries) {
    const path = rel ? `${rel}/${entry.name}` : entry.name;
    if (entry.isDirectory()) {
      const stale = staleSource(path);
      if (stale) return stale;
    } else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts')) {
      const built = mtimeOf(join(DIST, path.replace(/\.ts$/, '.js')));
      if (built === undefined || built < mtimeOf(join(SRC, path))) return path;
    }
  }
  return undefined;
}

module.exports = { staleSource };
