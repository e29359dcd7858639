import { open, readdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';

/** How many files are flushed at once (the fsyncs themselves run on libuv's thread pool). */
const PARALLEL = 16;

/**
 * Flushes every file and directory under `dir` to disk, then `dir` and its parent's entry for it: the
 * flush initdb does at its end, which `initdb --no-sync` leaves to us so it can overlap the server's start.
 * Entries that vanish meanwhile (a running server replaces its temporary files) are skipped; symbolic
 * links are not followed (a fresh cluster has none).
 */
export async function fsyncTree(dir: string): Promise<void> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  const files: string[] = [];
  const dirs: string[] = [];
  for (const e of entries) {
    const path = join(e.parentPath, e.name);
    if (e.isFile()) files.push(path);
    else if (e.isDirectory()) dirs.push(path);
  }
  await inBatches(files, fsyncPath);
  // Deepest first, so each directory is flushed after the entries it holds.
  dirs.sort((a, b) => b.split('/').length - a.split('/').length);
  for (const d of dirs) await fsyncPath(d);
  await fsyncPath(dir);
  await fsyncPath(dirname(dir));
}

async function inBatches(paths: string[], each: (path: string) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < paths.length) await each(paths[next++]);
  };
  await Promise.all(Array.from({ length: Math.min(PARALLEL, paths.length) }, worker));
}

async function fsyncPath(path: string): Promise<void> {
  let handle;
  try {
    handle = await open(path, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
