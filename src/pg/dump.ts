import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { chmod, mkdir, rename, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import { Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { findClientTools } from './client-tools';
import { type PgTarget, libpqArgs, libpqEnv, redactFor } from './connection';
import { createPasswordFilter, DumpFilterError } from './password-filter';
import { abortReason, describeExit, killGroup, startProgram } from './process';

export interface DumpOptions {
  /** The target platform's admin role: its `ALTER ROLE ... PASSWORD` lines are dropped from the dump. */
  adminRole: string;
  /** Roles, tablespaces and schemas only (the guide's "test the schema" step). */
  schemaOnly?: boolean;
  /** Bytes written so far: at the start, about once a second while they grow, and once at the end. */
  onProgress?(bytes: number): void;
  signal?: AbortSignal;
}

export interface DumpOutcome {
  bytes: number;
  /** Hex sha256 of the file as written (after filtering); the restore checks it. */
  sha256: string;
  droppedStatements: number;
}

const PROGRESS_INTERVAL_MS = 1000;
const STDERR_LIMIT = 64 * 1024;

/** Counts and hashes what flows through. */
class Tally extends Transform {
  bytes = 0;
  private readonly hash = createHash('sha256');

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.bytes += chunk.length;
    this.hash.update(chunk);
    callback(null, chunk);
  }

  digest(): string {
    return this.hash.digest('hex');
  }
}

/**
 * The guide's `pg_dumpall | grep -v 'ALTER ROLE aptible .*PASSWORD' > dump.sql`, made safe to retry: the dump
 * goes to `<outPath>.partial` and is renamed into place only when pg_dumpall succeeded, so `outPath` either
 * holds a complete dump or does not exist. The file is 0600: it holds the password hashes of every role.
 */
export async function dumpAll(source: PgTarget, outPath: string, opts: DumpOptions): Promise<DumpOutcome> {
  const tools = await findClientTools();
  const partial = `${outPath}.partial`;
  await mkdir(dirname(outPath), { recursive: true, mode: 0o700 });
  // A partial file of an earlier attempt may have other permissions; start from nothing.
  await rm(partial, { force: true });
  opts.signal?.throwIfAborted();

  const args = [...libpqArgs(source), '-l', source.database];
  if (opts.schemaOnly) args.push('--schema-only');
  const { child, exited } = startProgram(tools.pgDumpall, args, { env: libpqEnv(source), stdout: 'pipe' });
  let stderr = '';
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (text: string) => {
    if (stderr.length < STDERR_LIMIT) stderr += text;
  });
  const onAbort = () => killGroup(child.pid);
  opts.signal?.addEventListener('abort', onAbort, { once: true });

  const filter = createPasswordFilter(opts.adminRole);
  const tally = new Tally();
  // On a clock, not on each chunk: the bytes before a pause (a table lock, a slow query) still show.
  let reported = -1;
  const report = () => {
    if (tally.bytes === reported) return;
    reported = tally.bytes;
    opts.onProgress?.(tally.bytes);
  };
  report();
  const timer = opts.onProgress ? setInterval(report, PROGRESS_INTERVAL_MS) : undefined;
  try {
    const file = createWriteStream(partial, { flags: 'w', mode: 0o600, flush: true });
    const copied = pipeline(child.stdout!, filter, tally, file);
    // A write failure (disk full) must not leave pg_dumpall blocked on a query with nobody reading.
    copied.catch(() => killGroup(child.pid));
    const [copy, exit] = await Promise.allSettled([copied, exited]);
    opts.signal?.throwIfAborted();
    // A dump the filter refuses says why; pg_dumpall then only died of the pipe the filter closed.
    if (copy.status === 'rejected' && copy.reason instanceof DumpFilterError) throw copy.reason;
    if (exit.status === 'rejected') throw exit.reason;
    if (exit.value.code !== 0) {
      throw new Error(
        `pg_dumpall ${describeExit(exit.value)} while dumping ${source.host}:${source.port}: ${stderr.trim() || '(no output)'}`,
      );
    }
    if (copy.status === 'rejected') throw copy.reason;
    // umask may have narrowed the mode on creation; make sure it is exactly owner-only.
    await chmod(partial, 0o600);
    await rename(partial, outPath);
    opts.onProgress?.(tally.bytes);
    return { bytes: tally.bytes, sha256: tally.digest(), droppedStatements: filter.droppedStatements };
  } catch (err) {
    await rm(partial, { force: true });
    if (opts.signal?.aborted) throw abortReason(opts.signal);
    if (err instanceof DumpFilterError) throw err; // no secret in it, and a retry would read the same dump
    throw new Error(redactFor(source, err instanceof Error ? err.message : String(err)));
  } finally {
    if (timer) clearInterval(timer);
    opts.signal?.removeEventListener('abort', onAbort);
  }
}

/** The sha256 of a file, streamed: dumps can be far larger than memory. */
export async function fileSha256(path: string): Promise<string> {
  const hash = createHash('sha256');
  await pipeline(createReadStream(path), hash);
  return hash.digest('hex');
}
