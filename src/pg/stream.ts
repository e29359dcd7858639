// Copy strategy `stream`: the guide's dump and restore with no file in between, and the databases side by
// side. The roles as `pg_dumpall --globals-only | filter | psql` (the password filter as in the guide's
// file), then every database pg_dumpall would dump by `pg_dump | psql`, as pg_dumpall's own script does it
// (template1 and postgres into the databases the target has, the others with --create), several at once.
// psql starts on the first byte instead of after the last, and while one database builds its indexes the
// next one's rows flow: on two cores this copies in about 0.6 × the time of the guide's one pipe. A retry
// starts again from a reset target (the caller's job) and reads the source anew: the services are down.
import type { ChildProcess } from 'node:child_process';
import { availableParallelism, tmpdir } from 'node:os';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { RestoreInterruptedError } from '../errors';
import { type PgTarget, libpqArgs, libpqEnv, redactFor } from './connection';
import { DumpFilterError, createPasswordFilter } from './password-filter';
import { pgOptions } from './parallel/restore';
import { type SourceDatabase, sourceDatabases } from './parallel/source-databases';
import { dbnameArg } from './parallel/tools';
import { findClientTools } from './client-tools';
import { abortReason, describeExit, killGroup, startProgram } from './process';
import { judgePsql } from './restore';
import type { ClassifiedErrors } from './restore-errors';

export interface StreamOptions {
  /** The target platform's admin role: its `ALTER ROLE ... PASSWORD` statements are dropped. */
  adminRole: string;
  /** Error texts (after `ERROR:`) the plan allows. */
  expected: readonly string[];
  /** Databases not to copy (accept.skipDatabases). */
  skipDatabases?: readonly string[];
  /** Databases copied at once (plan.copy.jobs); default: the worker's cores, at most the databases. */
  lanes?: number;
  /** Session settings for psql's connections (PGOPTIONS): gone with its sessions. */
  sessionSettings?: Record<string, string>;
  /** Bytes the dump programs wrote so far: at the start, about once a second, and at the end. */
  onProgress?(progress: StreamProgress): void;
  signal?: AbortSignal;
}

export interface StreamProgress {
  bytes: number;
  /** The databases' size on disk: the progress's estimate of the total. */
  sourceSizeBytes: number;
  databasesDone: number;
  databasesTotal: number;
}

export interface StreamOutcome extends ClassifiedErrors {
  /** The dump's size as the programs wrote it (before the filter). */
  bytes: number;
  droppedStatements: number;
  databases: number;
}

const PROGRESS_INTERVAL_MS = 1000;
// Thousands of errors are as conclusive as millions; the cap keeps a broken restore from eating memory.
const PSQL_STDERR_LIMIT = 8 * 1024 * 1024;
const DUMP_STDERR_LIMIT = 64 * 1024;

/**
 * Every statement runs (no ON_ERROR_STOP, as in the guide) and every error PostgreSQL reports is classified;
 * unexpected errors are returned, not thrown. It throws RestoreInterruptedError when a program did not get
 * through its part for reasons of its own (killed, a connection lost): psql would otherwise take a dump cut
 * short for a whole one. The first failure stops every other pipe.
 */
export async function streamAll(
  source: PgTarget,
  target: PgTarget,
  opts: StreamOptions,
): Promise<StreamOutcome> {
  const tools = await findClientTools();
  const databases = await sourceDatabases(source, opts.skipDatabases ?? [], { countLargeTables: false });
  opts.signal?.throwIfAborted();
  const sourceSizeBytes = databases.reduce((sum, db) => sum + db.bytes, 0);
  const psqlEnv = {
    ...libpqEnv(target),
    // After the worker's own PGOPTIONS, if any: the later setting wins.
    PGOPTIONS: [process.env.PGOPTIONS, pgOptions(opts.sessionSettings ?? {})].filter(Boolean).join(' '),
  };
  const run = (pipe: Omit<Pipe, 'tools' | 'psqlEnv'>, signal?: AbortSignal) =>
    runPipe(source, target, { ...pipe, tools, psqlEnv }, opts.expected, signal);

  const counters: Counter[] = [];
  let databasesDone = 0;
  const report = () =>
    opts.onProgress?.({
      bytes: counters.reduce((sum, c) => sum + c.bytes, 0),
      sourceSizeBytes,
      databasesDone,
      databasesTotal: databases.length,
    });
  report();
  const timer = opts.onProgress ? setInterval(report, PROGRESS_INTERVAL_MS) : undefined;
  try {
    const globals = await run(
      {
        program: tools.pgDumpall,
        args: ['--globals-only', '-l', source.database],
        filterFor: opts.adminRole,
        psqlDatabase: target.database,
        what: 'the roles and tablespaces',
        counter: counted(counters),
      },
      opts.signal,
    );
    const results = await inLanes(
      // Largest first, so no lane is left with the big one at the end.
      [...databases].sort((a, b) => b.bytes - a.bytes),
      lanesFor(databases, opts.lanes),
      opts.signal,
      async (db: SourceDatabase, signal: AbortSignal) => {
        // As pg_dumpall's script: these two into the databases every server has, the others created.
        const into = db.name === 'template1' || db.name === 'postgres';
        const result = await run(
          {
            program: tools.pgDump,
            args: [...(into ? [] : ['--create']), '-d', dbnameArg(db.name)],
            psqlDatabase: into ? db.name : target.database,
            what: `database ${JSON.stringify(db.name)}`,
            counter: counted(counters),
          },
          signal,
        );
        databasesDone += 1;
        return result;
      },
    );
    // In pg_dumpall's order, whatever order the lanes finished in.
    const ordered = databases.map((db) => results.get(db)!);
    const all = [globals, ...ordered];
    report();
    return {
      expected: all.flatMap((r) => r.expected),
      unexpected: all.flatMap((r) => r.unexpected),
      bytes: counters.reduce((sum, c) => sum + c.bytes, 0),
      droppedStatements: globals.droppedStatements,
      databases: databases.length,
    };
  } finally {
    if (timer) clearInterval(timer);
  }
}

/** Databases at once: the plan's, else the worker's cores; never more than there are databases. */
export function lanesFor(
  databases: readonly SourceDatabase[],
  planned?: number,
  cores = availableParallelism(),
): number {
  return Math.max(1, Math.min(planned ?? cores, databases.length));
}

interface Counter {
  bytes: number;
}

function counted(counters: Counter[]): Counter {
  const counter = { bytes: 0 };
  counters.push(counter);
  return counter;
}

/**
 * Runs `work` for every item, `lanes` at a time. The first failure stops the others (through the signal
 * they are given) and is what this throws; a cancel throws the caller's reason.
 */
async function inLanes<T, R>(
  items: readonly T[],
  lanes: number,
  signal: AbortSignal | undefined,
  work: (item: T, signal: AbortSignal) => Promise<R>,
): Promise<Map<T, R>> {
  const stop = new AbortController();
  const both = signal ? AbortSignal.any([signal, stop.signal]) : stop.signal;
  const queue = [...items];
  const results = new Map<T, R>();
  let first: { error: unknown } | undefined;
  const lane = async () => {
    for (let item = queue.shift(); item !== undefined && !both.aborted; item = queue.shift()) {
      try {
        results.set(item, await work(item, both));
      } catch (err) {
        first ??= { error: err };
        stop.abort(err);
        return;
      }
    }
  };
  await Promise.all(Array.from({ length: lanes }, lane));
  if (signal?.aborted) throw abortReason(signal);
  if (first) throw first.error;
  return results;
}

interface Pipe {
  tools: { psql: string };
  psqlEnv: NodeJS.ProcessEnv;
  /** pg_dumpall or pg_dump, and its arguments after the connection's. */
  program: string;
  args: string[];
  /** The admin role whose password statements the filter drops; without it, no filter. */
  filterFor?: string;
  psqlDatabase: string;
  /** What this pipe copies, for messages: `the roles`, `database "shop"`. */
  what: string;
  counter: Counter;
}

/** `program | [filter] | psql`, judged: psql's errors classified, and the program's exit checked. */
async function runPipe(
  source: PgTarget,
  target: PgTarget,
  pipe: Pipe,
  expected: readonly string[],
  signal?: AbortSignal,
): Promise<ClassifiedErrors & { droppedStatements: number }> {
  signal?.throwIfAborted();
  const name = pipe.program.split('/').pop()!;
  // psql's working directory must be one it can enter; the stream has none of its own.
  const psql = startProgram(
    pipe.tools.psql,
    ['-X', '-q', ...libpqArgs(target), '-d', dbnameArg(pipe.psqlDatabase), '-f', '-'],
    { env: pipe.psqlEnv, cwd: tmpdir(), stdin: 'pipe', stdout: 'ignore' },
  );
  const dump = startProgram(pipe.program, [...libpqArgs(source), ...pipe.args], {
    env: libpqEnv(source),
    stdout: 'pipe',
  });
  // Never a group whose leader has been reaped: its id may be another's by now.
  const stop = (child: ChildProcess) => {
    if (child.exitCode === null && child.signalCode === null) killGroup(child.pid);
  };
  const killBoth = () => {
    stop(dump.child);
    stop(psql.child);
  };
  const psqlErr = collect(psql.child.stderr!, PSQL_STDERR_LIMIT);
  const dumpErr = collect(dump.child.stderr!, DUMP_STDERR_LIMIT);
  signal?.addEventListener('abort', killBoth, { once: true });

  const filter = pipe.filterFor ? createPasswordFilter(pipe.filterFor) : undefined;
  const count = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      pipe.counter.bytes += chunk.length;
      done(null, chunk);
    },
  });
  try {
    const piped = filter
      ? pipeline(dump.child.stdout!, count, filter, psql.child.stdin!)
      : pipeline(dump.child.stdout!, count, psql.child.stdin!);
    // A refused dump, or a psql gone: neither program may be left blocked on a pipe nobody serves. A psql
    // that ends before its input did (it could not connect, say) stops the dump at once, rather than when
    // the dump next writes: it may be reading a large catalog, or waiting on a lock. (Node ends the pipe
    // when psql exits, which fails the pipeline too; the exit is watched here so as not to rely on it.)
    let flowed = false;
    piped.then(
      () => (flowed = true),
      () => killBoth(),
    );
    void psql.exited.then(
      () => !flowed && stop(dump.child),
      () => stop(dump.child),
    );
    const [flow, dumpExit, psqlExit] = await Promise.allSettled([piped, dump.exited, psql.exited]);
    if (signal?.aborted) throw abortReason(signal);
    if (flow.status === 'rejected' && flow.reason instanceof DumpFilterError) throw flow.reason;
    if (psqlExit.status === 'rejected') {
      throw new Error(redactFor(target, `cannot run ${pipe.tools.psql}: ${errorText(psqlExit.reason)}`));
    }
    if (dumpExit.status === 'rejected') {
      throw new Error(redactFor(source, `cannot run ${pipe.program}: ${errorText(dumpExit.reason)}`));
    }
    const at = ` after ${pipe.counter.bytes} bytes of the dump of ${pipe.what}`;
    // psql first: when it failed, the dump program only died of the pipe it closed, and psql's own errors
    // (a refused \connect, say) are the story, not a broken pipe to retry.
    const judged = judgePsql(target, { exit: psqlExit.value, ...psqlErr() }, expected, {
      at,
      database: pipe.psqlDatabase,
    });
    const dumped = dumpExit.value;
    const psqlFailed = psqlExit.value.code !== 0 && judged.unexpected.length > 0;
    if ((dumped.code !== 0 || dumped.signal) && !psqlFailed) {
      throw new RestoreInterruptedError(
        redactFor(
          source,
          `${name} ${describeExit(dumped)}${at} while streaming from ${source.host}:${source.port}: ` +
            `${dumpErr().stderr.trim() || '(no output)'}\nThe copy is retried from a reset target.`,
        ),
      );
    }
    if (flow.status === 'rejected' && !psqlFailed) {
      throw new RestoreInterruptedError(
        `the stream from ${name} to psql broke${at}: ${errorText(flow.reason)}; the copy is retried from a ` +
          'reset target',
      );
    }
    // Several databases stream at once and psql names its input <stdin>: each error says whose it is.
    const whose = (e: string) => `${e}\n(${pipe.what})`;
    return {
      expected: judged.expected.map(whose),
      unexpected: judged.unexpected.map(whose),
      droppedStatements: filter?.droppedStatements ?? 0,
    };
  } finally {
    signal?.removeEventListener('abort', killBoth);
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
