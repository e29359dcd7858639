import { readFile, readdir, readlink, realpath, stat } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { DumpMissingError, RestoreInterruptedError } from '../errors';
import { findClientTools } from './client-tools';
import { type PgTarget, libpqArgs, libpqEnv, redactFor } from './connection';
import { fileSha256 } from './dump';
import { type Exit, abortReason, describeExit, killGroup, startProgram } from './process';
import {
  type ClassifiedErrors,
  classifyRestoreErrors,
  isConnectionFailure,
  parsePsqlErrors,
} from './restore-errors';

export interface RestoreProgress {
  /** How far psql has read into the dump (from /proc on Linux; undefined elsewhere). */
  bytesRead?: number;
  totalBytes: number;
}

/** The errors PostgreSQL reported, expected or not; a restore that psql did not finish throws instead. */
export type RestoreOutcome = ClassifiedErrors;

export interface RestoreOptions {
  /** Error texts (after `ERROR:`) the plan allows. */
  expected: readonly string[];
  /** When given, the dump must have this sha256 (it is the file the dump step wrote). */
  sha256?: string;
  /** Called about every few seconds while psql runs. */
  onProgress?(progress: RestoreProgress): void;
  signal?: AbortSignal;
}

const PROGRESS_INTERVAL_MS = 2000;
// Thousands of errors are as conclusive as millions; the cap keeps a broken restore from eating memory.
const STDERR_LIMIT = 8 * 1024 * 1024;

/**
 * The guide's `psql $TARGET_URL -f dump.sql > /dev/null`: every statement runs (no ON_ERROR_STOP, as in the
 * guide) and every error PostgreSQL reports is collected and classified. Unexpected errors are returned, not
 * thrown: the caller decides. It throws RestoreInterruptedError when psql did not get through the dump for
 * reasons of its own (killed, connection dropped or refused): nothing about the dump is known then, and a
 * retry from a reset target is the cure.
 */
export async function restoreDump(
  target: PgTarget,
  dumpPath: string,
  opts: RestoreOptions,
): Promise<RestoreOutcome> {
  const path = resolve(dumpPath);
  const size = await stat(path).then(
    (s) => s.size,
    () => undefined,
  );
  if (size === undefined) {
    throw new DumpMissingError(
      `the dump ${path} is not on this worker (it may have been written by another worker, or removed); ` +
        'run the migration again so the dump is taken anew, with one worker or a shared PGSHIFT_WORK_DIR',
    );
  }
  const tools = await findClientTools();
  const realPath = await realpath(path);
  opts.signal?.throwIfAborted();

  const { child, exited } = startProgram(
    tools.psql,
    ['-X', '-q', ...libpqArgs(target), '-d', target.database, '-f', path],
    // psql complains about a working directory it cannot enter; the dump's directory is always readable.
    { env: libpqEnv(target), cwd: dirname(path), stdout: 'ignore' },
  );
  let stderr = '';
  let truncated = false;
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (text: string) => {
    if (stderr.length < STDERR_LIMIT) stderr += text;
    else truncated = true;
  });
  const onAbort = () => killGroup(child.pid);
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  // The dump is checked while psql reads it, not before: hashing first put seconds per GB on the copy (and
  // on the downtime). A file that is not the one the dump step wrote (another worker's, or damaged) stops
  // psql, and the workflow dumps again into a reset target. What psql ran of it went to the target only,
  // a server this migration made and that nothing uses yet.
  const hashing = new AbortController();
  const changed = opts.sha256 ? dumpChanged(path, opts.sha256, hashing.signal) : Promise.resolve(false);
  void changed.then((yes) => {
    // Never a group whose leader has gone: its id may be another's by now.
    if (yes && child.exitCode === null && child.signalCode === null) killGroup(child.pid);
  });
  let lastRead: number | undefined;
  const timer = opts.onProgress
    ? setInterval(() => {
        void readOffset(child.pid, realPath).then((bytesRead) => {
          lastRead = bytesRead ?? lastRead;
          // A read that missed (psql between files, or gone) keeps the last position rather than none.
          opts.onProgress?.({ bytesRead: lastRead, totalBytes: size });
        });
      }, PROGRESS_INTERVAL_MS)
    : undefined;

  try {
    const exit = await exited.catch((err: Error) => {
      throw new Error(redactFor(target, `cannot run ${tools.psql}: ${err.message}`));
    });
    if (opts.signal?.aborted) throw abortReason(opts.signal);
    if (await changed) {
      throw new DumpMissingError(
        `the dump ${path} is not the file the dump step wrote (its sha256 differs: another worker's, or ` +
          'changed since); the dump is taken anew',
      );
    }
    const at = lastRead !== undefined ? ` after reading ${lastRead} of ${size} bytes of the dump` : '';
    const classified = judgePsql(target, { exit, stderr, truncated }, opts.expected, { at });
    opts.onProgress?.({ bytesRead: size, totalBytes: size });
    return classified;
  } finally {
    hashing.abort();
    if (timer) clearInterval(timer);
    opts.signal?.removeEventListener('abort', onAbort);
  }
}

/** How psql ended, as it ended: its stderr (capped) and whether the cap cut it. */
export interface PsqlRun {
  exit: Exit;
  stderr: string;
  truncated: boolean;
}

/**
 * psql's errors, classified; throws RestoreInterruptedError when psql did not get through its input for
 * reasons of its own (killed, connection dropped or refused): nothing about the dump is known then, and a
 * retry from a reset target is the cure. `at` says how far it got, for that message.
 */
export function judgePsql(
  target: PgTarget,
  run: PsqlRun,
  expected: readonly string[],
  { at = '', database = target.database }: { at?: string; database?: string } = {},
): ClassifiedErrors {
  const errors = parsePsqlErrors(run.stderr).map((e) => redactFor(target, e));
  // `psql: error: ...` without a file position means the first connection failed: nothing ran. The reset
  // before the restore reached this server moments ago, so this is taken as passing.
  if (run.exit.code === 2 && /^psql: error:/.test(run.stderr)) {
    throw new RestoreInterruptedError(
      redactFor(
        target,
        `psql cannot connect to ${target.host}:${target.port} (database ${JSON.stringify(database)}): ` +
          `${run.stderr.trim()}\nThe restore is retried.`,
      ),
    );
  }
  if (run.exit.signal) {
    throw new RestoreInterruptedError(
      `psql ${describeExit(run.exit)}${at}, a signal pgshift did not send (the OOM killer, or someone on the ` +
        "worker's machine); this says nothing about the dump. The restore is retried from a reset target; " +
        'if it keeps happening, look at the memory and the logs of the worker machine.',
    );
  }
  const dropped = errors.filter(isConnectionFailure);
  if (dropped.length > 0) {
    throw new RestoreInterruptedError(
      `psql lost its connection to the target${at || ' part way through the dump'}:\n${dropped.join('\n')}\n` +
        'The restore is retried from a reset target; if it keeps happening, check the network to the ' +
        "target and the target server's log (a server that crashes on a statement also drops the connection).",
    );
  }
  if (run.truncated)
    errors.push(`psql printed more than ${STDERR_LIMIT} bytes of errors; the rest were not read`);
  const classified = classifyRestoreErrors(errors, expected);
  // psql stops early (and says why, classified above) when a \connect is refused; a non-zero exit that
  // printed nothing still must not pass as a clean restore.
  if (run.exit.code !== 0 && classified.unexpected.length === 0) {
    classified.unexpected.push(`psql ${describeExit(run.exit)} before the end of the dump`);
  }
  return classified;
}

/** Whether the file's sha256 is not `sha256`; a file that cannot be read counts as changed. */
function dumpChanged(path: string, sha256: string, signal: AbortSignal): Promise<boolean> {
  return fileSha256(path, signal).then(
    (actual) => actual !== sha256,
    () => true,
  );
}

/** psql's read position in the dump, from /proc/<pid>/fdinfo: the only progress psql -f can give. */
async function readOffset(pid: number | undefined, path: string): Promise<number | undefined> {
  if (!pid) return undefined;
  try {
    for (const fd of await readdir(`/proc/${pid}/fd`)) {
      if ((await readlink(`/proc/${pid}/fd/${fd}`).catch(() => '')) !== path) continue;
      const info = await readFile(`/proc/${pid}/fdinfo/${fd}`, 'utf8');
      const pos = /^pos:\s+(\d+)/m.exec(info);
      return pos ? Number(pos[1]) : undefined;
    }
  } catch {
    // The process ended, or this is not Linux.
  }
  return undefined;
}
