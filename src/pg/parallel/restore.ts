// The parallel strategy's restore, onto a target the caller has reset: the roles by psql (globals.sql, as
// the guide's file begins), then each database's archive by `pg_restore -j N`, in pg_dumpall's order and
// as its script would: template1 and postgres restored into the databases the target has, every other
// database created by pg_restore --create with the properties its dump carries (a database the target
// already has, the platform's own, fails to be created, an expected error, and is restored into, as the
// guide's script does). Errors are gathered and classified like psql's; the caller decides.
import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { RestoreInterruptedError } from '../../errors';
import type { PgTarget } from '../connection';
import { redactFor } from '../connection';
import { type Exit, describeExit } from '../process';
import { restoreDump } from '../restore';
import { type ClassifiedErrors, classifyRestoreErrors, isConnectionFailure } from '../restore-errors';
import { GLOBALS, type Manifest, type ManifestDatabase } from './manifest';
import { ignoredErrorCount, parsePgRestoreErrors } from './pg-restore-errors';
import { dbnameArg, findParallelTools, runTool } from './tools';

export interface ParallelRestoreProgress {
  /** Bytes of the dump read so far (pg_restore's reads, from /proc on Linux). */
  bytesRead: number;
  totalBytes: number;
  database?: string;
  index?: number;
  total: number;
}

export interface ParallelRestoreOptions {
  /** Error texts (after `ERROR:`) the plan allows. */
  expected: readonly string[];
  /**
   * Session settings for the restore's own connections (PGOPTIONS): gone with the sessions, so nothing
   * persists on the target.
   */
  sessionSettings: Record<string, string>;
  onProgress?(progress: ParallelRestoreProgress): void;
  signal?: AbortSignal;
}

const PROGRESS_INTERVAL_MS = 2000;
const STDERR_LIMIT = 8 * 1024 * 1024;

export async function restoreParallel(
  target: PgTarget,
  dir: string,
  manifest: Manifest,
  opts: ParallelRestoreOptions,
): Promise<ClassifiedErrors> {
  const tools = await findParallelTools();
  const totalBytes = manifest.files.reduce((sum, f) => sum + f.size, 0);
  const total = manifest.databases.length;
  const globalsBytes = manifest.files.find((f) => f.path === GLOBALS)?.size ?? 0;
  const globals = await restoreDump(target, join(dir, GLOBALS), {
    expected: opts.expected,
    signal: opts.signal,
  });
  const result: ClassifiedErrors = { expected: [...globals.expected], unexpected: [...globals.unexpected] };

  let done = globalsBytes;
  opts.onProgress?.({ bytesRead: done, totalBytes, total });
  for (const [index, db] of manifest.databases.entries()) {
    let group: number | undefined;
    let finished = false;
    const before = done;
    const timer = opts.onProgress
      ? setInterval(() => {
          void groupReadBytes(group).then((read) => {
            // A late reading must not follow the database's final report.
            if (finished) return;
            const bytesRead = before + Math.min(read ?? 0, db.bytes);
            opts.onProgress?.({ bytesRead, totalBytes, database: db.name, index, total });
          });
        }, PROGRESS_INTERVAL_MS)
      : undefined;
    try {
      const run = await runTool(tools.pgRestore, target, restoreArgs(target, dir, db), {
        // After the worker's own PGOPTIONS, if any: the later setting wins.
        env: {
          PGOPTIONS: [process.env.PGOPTIONS, pgOptions(opts.sessionSettings)].filter(Boolean).join(' '),
        },
        signal: opts.signal,
        stderrLimit: STDERR_LIMIT,
        onStart: (pid) => (group = pid),
      });
      opts.signal?.throwIfAborted();
      const classified = judge(target, db, run, opts.expected);
      result.expected.push(...classified.expected);
      result.unexpected.push(...classified.unexpected);
    } finally {
      finished = true;
      if (timer) clearInterval(timer);
    }
    done += db.bytes;
    opts.onProgress?.({ bytesRead: done, totalBytes, database: db.name, index, total });
  }
  return result;
}

function restoreArgs(target: PgTarget, dir: string, db: ManifestDatabase): string[] {
  const archive = join(dir, db.dir);
  const jobs = ['-j', String(db.jobs)];
  // --create connects to the platform's database to create it, then to the new one, by the name in the
  // archive; `into` restores into the database of that name the target has.
  return db.restore === 'create'
    ? ['--create', '-d', dbnameArg(target.database), ...jobs, archive]
    : ['-d', dbnameArg(db.name), ...jobs, archive];
}

/** PGOPTIONS from settings: `-c name=value`, spaces and backslashes escaped as libpq reads them. */
export function pgOptions(settings: Record<string, string>): string {
  return Object.entries(settings)
    .map(([name, value]) => `-c ${name}=${value.replace(/([\\ ])/g, '\\$1')}`)
    .join(' ');
}

/**
 * pg_restore's errors, classified; throws RestoreInterruptedError when it did not get through the archive
 * for reasons of its own (killed, a connection lost or refused, a worker dead): a retry from a reset
 * target is the cure, and nothing about the dump is known.
 */
function judge(
  target: PgTarget,
  db: ManifestDatabase,
  run: { exit: Exit; stderr: string; truncated: boolean },
  expected: readonly string[],
): ClassifiedErrors {
  const name = JSON.stringify(db.name);
  if (run.exit.signal) {
    throw new RestoreInterruptedError(
      `pg_restore ${describeExit(run.exit)} while restoring database ${name}, a signal pgshift did not send ` +
        "(the OOM killer, or someone on the worker's machine); this says nothing about the dump. The restore " +
        "is retried from a reset target; if it keeps happening, look at the memory and the logs of the worker's machine.",
    );
  }
  const errors = parsePgRestoreErrors(run.stderr, db.name).map((e) => redactFor(target, e));
  const dropped = errors.filter((e) => isConnectionFailure(e) || /worker process died unexpectedly/.test(e));
  if (dropped.length > 0) {
    throw new RestoreInterruptedError(
      `pg_restore lost its connection to the target while restoring database ${name}:\n${dropped.join('\n')}\n` +
        'The restore is retried from a reset target; if it keeps happening, check the network to the target ' +
        "and the target server's log (a server that crashes on a statement also drops the connection).",
    );
  }
  // pg_restore writes a message in pieces: two jobs failing at once interleave them on one line, and the
  // second error would hide in the first one's text. Its own tally must match what could be read.
  const tally = ignoredErrorCount(run.stderr);
  if (tally > errors.length || /.pg_restore: /.test(run.stderr.replace(/^pg_restore: /gm, ''))) {
    errors.push(
      `pg_restore counted ${tally} error(s) while restoring database ${name}, and ${errors.length} could be ` +
        'read apart (jobs writing at once interleave their messages): the rest are unknown',
    );
  }
  if (run.truncated) {
    errors.push(`pg_restore printed more than ${STDERR_LIMIT} bytes of errors; the rest were not read`);
  }
  const classified = classifyRestoreErrors(errors, expected);
  if (run.exit.code !== 0 && errors.length === 0) {
    classified.unexpected.push(
      `pg_restore ${describeExit(run.exit)} while restoring database ${name}` +
        (ignoredErrorCount(run.stderr) > 0 ? ' and counted errors it did not print' : ', printing no error'),
    );
  }
  return classified;
}

/**
 * What the processes of a group have read (rchar of /proc/<pid>/io, summed): pg_restore and its workers
 * read the archive's files, and little else. undefined where /proc cannot tell.
 */
async function groupReadBytes(group: number | undefined): Promise<number | undefined> {
  if (!group) return undefined;
  try {
    let sum = 0;
    for (const pid of await readdir('/proc')) {
      if (!/^\d+$/.test(pid)) continue;
      const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
      // pgrp is the 3rd field after the command, which is in parentheses and may hold anything.
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(fields[2]) !== group) continue;
      const io = await readFile(`/proc/${pid}/io`, 'utf8').catch(() => '');
      sum += Number(/^rchar:\s+(\d+)/m.exec(io)?.[1] ?? 0);
    }
    return sum;
  } catch {
    return undefined;
  }
}
