// The parallel strategy's dump: the roles as pg_dumpall --globals-only writes them, through the password
// filter, then each database pg_dumpall would dump, by `pg_dump -Fd -j N` into a directory of its own.
// Everything goes to `<dir>.partial-<attempt>` and is renamed into place at the end, manifest written last:
// `dir` either holds a whole dump or does not exist, and a retry starts from nothing, as a first attempt
// does. Each attempt has a directory of its own, and the earlier ones are removed: a pg_dump orphaned by a
// killed worker (nothing reads its stdout, so no SIGPIPE stops it) can then open no file the retry writes.
import { chmod, mkdir, readdir, rename, rm, stat } from 'node:fs/promises';
import { randomUUID } from 'node:crypto';
import { basename, dirname, join } from 'node:path';
import { PgshiftError } from '../../errors';
import { type PgTarget, redactFor } from '../connection';
import { dumpAll } from '../dump';
import { abortReason, describeExit } from '../process';
import { GLOBALS, type ManifestDatabase, databaseDirName, describeFiles, writeManifest } from './manifest';
import { type SourceDatabase, jobsFor, sourceDatabases } from './source-databases';
import { dbnameArg, findParallelTools, runTool } from './tools';

export interface ParallelDumpOptions {
  adminRole: string;
  /** Databases not to dump (accept.skipDatabases). */
  skipDatabases: readonly string[];
  /** plan.copy.jobs: jobs per database, instead of the worker's choice. */
  jobs?: number;
  onProgress?(progress: ParallelDumpProgress): void;
  signal?: AbortSignal;
}

export interface ParallelDumpProgress {
  /** Bytes written so far, all files. */
  bytes: number;
  /** The source's size on disk (the databases dumped), the progress's estimate of the total. */
  sourceSizeBytes: number;
  /** The database being dumped, its index (from 0) and how many there are. */
  database?: string;
  index?: number;
  total: number;
}

export interface ParallelDumpOutcome {
  bytes: number;
  /** The manifest's sha256: what the restore checks the directory against. */
  sha256: string;
  droppedStatements: number;
  databases: ManifestDatabase[];
}

const PROGRESS_INTERVAL_MS = 1000;
const STDERR_LIMIT = 64 * 1024;

export async function dumpParallel(
  source: PgTarget,
  dir: string,
  opts: ParallelDumpOptions,
): Promise<ParallelDumpOutcome> {
  const tools = await findParallelTools();
  await removeEarlierAttempts(dir);
  const partial = `${dir}.partial-${randomUUID().slice(0, 8)}`;
  await mkdir(partial, { recursive: true, mode: 0o700 });
  await chmod(partial, 0o700);
  opts.signal?.throwIfAborted();

  const databases = await sourceDatabases(source, opts.skipDatabases);
  const sourceSizeBytes = databases.reduce((sum, db) => sum + db.bytes, 0);
  const total = databases.length;
  let done = 0;
  let current: { db: SourceDatabase; index: number; path: string } | undefined;
  const report = async () => {
    const at = current;
    const base = done;
    const inFlight = at ? await directoryBytes(at.path) : 0;
    // A reading that ends after its database did would count that database twice.
    if (current !== at) return;
    opts.onProgress?.({
      bytes: base + inFlight,
      sourceSizeBytes,
      database: at?.db.name,
      index: at?.index,
      total,
    });
  };
  const timer = opts.onProgress
    ? setInterval(() => void report().catch(() => undefined), PROGRESS_INTERVAL_MS)
    : undefined;
  try {
    const globals = await dumpAll(source, join(partial, GLOBALS), {
      adminRole: opts.adminRole,
      globalsOnly: true,
      signal: opts.signal,
    });
    done += globals.bytes;

    const dumped: ManifestDatabase[] = [];
    for (const [index, db] of databases.entries()) {
      const name = databaseDirName(index, db.name);
      const path = join(partial, name);
      const jobs = jobsFor(db, opts.jobs);
      current = { db, index, path };
      await report();
      const run = await runTool(
        tools.pgDump,
        source,
        // -Z0: compressing costs more CPU than the disk saves here; --no-sync: a crash is caught by the
        // manifest's sizes and the dump taken anew, as the guide's file is not synced either.
        ['-Fd', '-Z0', '--no-sync', '-j', String(jobs), '-f', path, '-d', dbnameArg(db.name)],
        { signal: opts.signal, stderrLimit: STDERR_LIMIT },
      );
      opts.signal?.throwIfAborted();
      if (run.exit.code !== 0) {
        throw new Error(
          `pg_dump ${describeExit(run.exit)} while dumping database ${JSON.stringify(db.name)} of ` +
            `${source.host}:${source.port}: ${run.stderr.trim() || '(no output)'}`,
        );
      }
      const bytes = await directoryBytes(path);
      done += bytes;
      current = undefined;
      // 'into': pg_dumpall restores these two into the databases a server always has (no --create).
      const into = db.name === 'template1' || db.name === 'postgres';
      dumped.push({ name: db.name, dir: name, restore: into ? 'into' : 'create', jobs, bytes });
    }

    const files = await describeFiles(partial, dumped);
    const sha256 = await writeManifest(partial, {
      droppedStatements: globals.droppedStatements,
      databases: dumped,
      files,
    });
    await rm(dir, { recursive: true, force: true });
    await rename(partial, dir);
    const bytes = files.reduce((sum, f) => sum + f.size, 0);
    opts.onProgress?.({ bytes, sourceSizeBytes, total });
    return { bytes, sha256, droppedStatements: globals.droppedStatements, databases: dumped };
  } catch (err) {
    await rm(partial, { recursive: true, force: true });
    if (opts.signal?.aborted) throw abortReason(opts.signal);
    if (err instanceof PgshiftError) throw err; // named errors carry no secret (DumpFilterError...)
    throw new Error(redactFor(source, err instanceof Error ? err.message : String(err)));
  } finally {
    if (timer) clearInterval(timer);
  }
}

/** Bytes of the files directly in `path` (a pg_dump directory archive has no subdirectories). */
async function directoryBytes(path: string): Promise<number> {
  let names: string[];
  try {
    names = await readdir(path);
  } catch {
    return 0; // pg_dump has not made it yet
  }
  const sizes = await Promise.all(
    names.map((n) =>
      stat(join(path, n)).then(
        (s) => (s.isFile() ? s.size : 0),
        () => 0,
      ),
    ),
  );
  return sizes.reduce((a, b) => a + b, 0);
}

async function removeEarlierAttempts(dir: string): Promise<void> {
  const prefix = `${basename(dir)}.partial`;
  const names = await readdir(dirname(dir)).catch(() => [] as string[]);
  for (const name of names) {
    if (name.startsWith(prefix)) await rm(join(dirname(dir), name), { recursive: true, force: true });
  }
}
