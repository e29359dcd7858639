// Copy strategy `stream`: the guide's commands without their file, `pg_dumpall | grep -v '...' | psql`, with
// pgshift's password filter in the middle. Nothing is written on the worker, and psql starts on the first
// byte pg_dumpall writes instead of after the last: the copy takes about the longer of the two, not their
// sum. A retry starts again from a reset target (the caller's job) and reads the source anew: the services
// are down, the source is what it was.
import { tmpdir } from 'node:os';
import { pipeline } from 'node:stream/promises';
import { RestoreInterruptedError } from '../errors';
import { findClientTools } from './client-tools';
import { type PgTarget, libpqArgs, libpqEnv, redactFor } from './connection';
import { DumpFilterError, createPasswordFilter } from './password-filter';
import { abortReason, describeExit, killGroup, startProgram } from './process';
import { pgOptions } from './parallel/restore';
import { judgePsql } from './restore';
import type { ClassifiedErrors } from './restore-errors';

export interface StreamOptions {
  /** The target platform's admin role: its `ALTER ROLE ... PASSWORD` statements are dropped. */
  adminRole: string;
  /** Error texts (after `ERROR:`) the plan allows. */
  expected: readonly string[];
  /** Session settings for psql's connections (PGOPTIONS): gone with its sessions. */
  sessionSettings?: Record<string, string>;
  /** Bytes pg_dumpall wrote so far: at the start, about once a second while they grow, and at the end. */
  onProgress?(bytes: number): void;
  signal?: AbortSignal;
}

export interface StreamOutcome extends ClassifiedErrors {
  /** The dump's size as pg_dumpall wrote it (before the filter). */
  bytes: number;
  droppedStatements: number;
}

const PROGRESS_INTERVAL_MS = 1000;
// Thousands of errors are as conclusive as millions; the cap keeps a broken restore from eating memory.
const PSQL_STDERR_LIMIT = 8 * 1024 * 1024;
const DUMP_STDERR_LIMIT = 64 * 1024;

/**
 * `pg_dumpall | filter | psql`, every statement run (no ON_ERROR_STOP, as in the guide) and every error
 * PostgreSQL reports classified; unexpected errors are returned, not thrown. It throws
 * RestoreInterruptedError when either program did not get through the dump for reasons of its own (killed,
 * a connection lost): psql would otherwise take a dump cut short for a whole one.
 */
export async function streamAll(
  source: PgTarget,
  target: PgTarget,
  opts: StreamOptions,
): Promise<StreamOutcome> {
  const tools = await findClientTools();
  opts.signal?.throwIfAborted();

  // psql's working directory must be one it can enter; the dump has none of its own.
  const psql = startProgram(
    tools.psql,
    ['-X', '-q', ...libpqArgs(target), '-d', target.database, '-f', '-'],
    {
      // After the worker's own PGOPTIONS, if any: the later setting wins.
      env: {
        ...libpqEnv(target),
        PGOPTIONS: [process.env.PGOPTIONS, pgOptions(opts.sessionSettings ?? {})].filter(Boolean).join(' '),
      },
      cwd: tmpdir(),
      stdin: 'pipe',
      stdout: 'ignore',
    },
  );
  const dump = startProgram(tools.pgDumpall, [...libpqArgs(source), '-l', source.database], {
    env: libpqEnv(source),
    stdout: 'pipe',
  });
  const killBoth = () => {
    killGroup(dump.child.pid);
    killGroup(psql.child.pid);
  };
  const psqlErr = collect(psql.child.stderr!, PSQL_STDERR_LIMIT);
  const dumpErr = collect(dump.child.stderr!, DUMP_STDERR_LIMIT);
  opts.signal?.addEventListener('abort', killBoth, { once: true });

  const filter = createPasswordFilter(opts.adminRole);
  let bytes = 0;
  dump.child.stdout!.on('data', (chunk: Buffer) => (bytes += chunk.length));
  let reported = -1;
  const report = () => {
    if (bytes === reported) return;
    reported = bytes;
    opts.onProgress?.(bytes);
  };
  report();
  const timer = opts.onProgress ? setInterval(report, PROGRESS_INTERVAL_MS) : undefined;

  try {
    const piped = pipeline(dump.child.stdout!, filter, psql.child.stdin!);
    // A refused dump, or a psql gone: neither program may be left blocked on a pipe nobody serves.
    piped.catch(killBoth);
    const [pipe, dumpExit, psqlExit] = await Promise.allSettled([piped, dump.exited, psql.exited]);
    if (opts.signal?.aborted) throw abortReason(opts.signal);
    if (pipe.status === 'rejected' && pipe.reason instanceof DumpFilterError) throw pipe.reason;
    if (psqlExit.status === 'rejected') {
      throw new Error(redactFor(target, `cannot run ${tools.psql}: ${errorText(psqlExit.reason)}`));
    }
    if (dumpExit.status === 'rejected') {
      throw new Error(redactFor(source, `cannot run ${tools.pgDumpall}: ${errorText(dumpExit.reason)}`));
    }
    const at = ` after ${bytes} bytes of the dump`;
    // psql first: when it failed, pg_dumpall only died of the pipe it closed.
    const classified = judgePsql(target, { exit: psqlExit.value, ...psqlErr() }, opts.expected, at);
    const dumped = dumpExit.value;
    if (dumped.code !== 0 || dumped.signal) {
      throw new RestoreInterruptedError(
        redactFor(
          source,
          `pg_dumpall ${describeExit(dumped)}${at} while streaming from ${source.host}:${source.port}: ` +
            `${dumpErr().stderr.trim() || '(no output)'}\nThe copy is retried from a reset target.`,
        ),
      );
    }
    if (pipe.status === 'rejected') {
      throw new RestoreInterruptedError(
        `the stream from pg_dumpall to psql broke${at}: ${errorText(pipe.reason)}; the copy is retried ` +
          'from a reset target',
      );
    }
    opts.onProgress?.(bytes);
    return { ...classified, bytes, droppedStatements: filter.droppedStatements };
  } finally {
    if (timer) clearInterval(timer);
    opts.signal?.removeEventListener('abort', killBoth);
  }
}

/** A program's stderr, kept up to `limit` characters. */
function collect(stream: NodeJS.ReadableStream, limit: number): () => { stderr: string; truncated: boolean } {
  let stderr = '';
  let truncated = false;
  stream.setEncoding('utf8');
  stream.on('data', (text: string) => {
    if (stderr.length < limit) stderr += text;
    else truncated = true;
  });
  return () => ({ stderr, truncated });
}

const errorText = (err: unknown) => (err instanceof Error ? err.message : String(err));
