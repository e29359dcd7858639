import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { type FileHandle, chmod, mkdir, open, rename, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { type ClientTools, findClientTools } from './client-tools';
import { type PgTarget, libpqArgs, libpqEnv, redactFor } from './connection';
import { type PasswordFilter, createPasswordFilter, DumpFilterError } from './password-filter';
import { abortReason, describeExit, killGroup, startProgram } from './process';

export interface DumpOptions {
  /** The target platform's admin role: its `ALTER ROLE ... PASSWORD` lines are dropped from the dump. */
  adminRole: string;
  /** Roles, tablespaces and schemas only (the guide's "test the schema" step). */
  schemaOnly?: boolean;
  /** Roles, memberships and tablespaces only (`--globals-only`: the parallel strategy's first file). */
  globalsOnly?: boolean;
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
// The dump is written in batches of this size, one write at a time: the pipe delivers 64 KiB reads, and a
// write (a trip to the thread pool) per read, each read kept alive until written, cost more CPU than grep.
const WRITE_BATCH_BYTES = 1024 * 1024;

/**
 * The guide's `pg_dumpall | grep -v 'ALTER ROLE aptible .*PASSWORD' > dump.sql`, made safe to retry: the dump
 * goes to `<outPath>.partial` and is renamed into place only when pg_dumpall succeeded, so `outPath` either
 * holds a complete dump or does not exist. The file is 0600: it holds the password hashes of every role.
 *
 * It costs what the guide's pipe costs: the filter reads only the role section, the rest is hashed and
 * written in large batches, and the file is not fsynced (nor does the guide's `>`): the restore checks the
 * sha256 as psql reads the file, so a dump a crash damaged is taken anew and restored into a reset target.
 */
export async function dumpAll(source: PgTarget, outPath: string, opts: DumpOptions): Promise<DumpOutcome> {
  const tools = await clientTools();
  const partial = `${outPath}.partial`;
  await mkdir(dirname(outPath), { recursive: true, mode: 0o700 });
  // A partial file of an earlier attempt may have other permissions; start from nothing.
  await rm(partial, { force: true });
  opts.signal?.throwIfAborted();

  // Opened before pg_dumpall starts: a file that cannot be made must not leave it blocked on its pipe.
  const file = await open(partial, 'w', 0o600);
  const args = [...libpqArgs(source), '-l', source.database];
  if (opts.schemaOnly) args.push('--schema-only');
  if (opts.globalsOnly) args.push('--globals-only');
  let started: ReturnType<typeof startProgram>;
  try {
    started = startProgram(tools.pgDumpall, args, { env: libpqEnv(source), stdout: 'pipe' });
  } catch (err) {
    await file.close();
    await rm(partial, { force: true });
    throw err;
  }
  const { child, exited } = started;
  let stderr = '';
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (text: string) => {
    if (stderr.length < STDERR_LIMIT) stderr += text;
  });
  const onAbort = () => killGroup(child.pid);
  opts.signal?.addEventListener('abort', onAbort, { once: true });

  const filter = createPasswordFilter(opts.adminRole);
  const hash = createHash('sha256');
  let bytes = 0;
  // On a clock, not on each chunk: the bytes before a pause (a table lock, a slow query) still show.
  let reported = -1;
  const report = () => {
    if (bytes === reported) return;
    reported = bytes;
    opts.onProgress?.(bytes);
  };
  report();
  const timer = opts.onProgress ? setInterval(report, PROGRESS_INTERVAL_MS) : undefined;
  let closed = false;
  try {
    const copied = copyFiltered(child.stdout!, file, filter, (chunk) => {
      bytes += chunk.length;
      hash.update(chunk);
    });
    // A write failure (disk full) must not leave pg_dumpall blocked on a query with nobody reading.
    copied.catch(() => killGroup(child.pid));
    const [copy, exit] = await Promise.allSettled([copied, exited]);
    opts.signal?.throwIfAborted();
    // A dump the filter refuses says why; pg_dumpall then only died of the pipe the filter closed.
    if (copy.status === 'rejected' && copy.reason instanceof DumpFilterError) throw copy.reason;
    if (exit.status === 'rejected') {
      toolsFound.clear(); // pg_dumpall could not be started: look for it anew next time
      throw exit.reason;
    }
    if (exit.value.code !== 0) {
      throw new Error(
        `pg_dumpall ${describeExit(exit.value)} while dumping ${source.host}:${source.port}: ${stderr.trim() || '(no output)'}`,
      );
    }
    if (copy.status === 'rejected') throw copy.reason;
    await file.close();
    closed = true;
    // umask may have narrowed the mode on creation; make sure it is exactly owner-only.
    await chmod(partial, 0o600);
    await rename(partial, outPath);
    opts.onProgress?.(bytes);
    return { bytes, sha256: hash.digest('hex'), droppedStatements: filter.droppedStatements };
  } catch (err) {
    if (!closed) await file.close().catch(() => undefined);
    await rm(partial, { force: true });
    if (opts.signal?.aborted) throw abortReason(opts.signal);
    if (err instanceof DumpFilterError) throw err; // no secret in it, and a retry would read the same dump
    throw new Error(redactFor(source, err instanceof Error ? err.message : String(err)));
  } finally {
    if (timer) clearInterval(timer);
    opts.signal?.removeEventListener('abort', onAbort);
  }
}

const toolsFound = new Map<string, Promise<ClientTools>>();

/**
 * findClientTools, once per PGSHIFT_PG_BIN and PATH: it runs `pg_dumpall --version`, some 40 ms, which
 * preflight has done already and which is 3 % of the dump of a 250 MB source.
 */
function clientTools(): Promise<ClientTools> {
  const key = `${process.env.PGSHIFT_PG_BIN ?? ''}\0${process.env.PATH ?? ''}`;
  let found = toolsFound.get(key);
  if (!found) {
    found = findClientTools();
    toolsFound.set(key, found);
    found.catch(() => toolsFound.delete(key));
  }
  return found;
}

/**
 * input → filter → file, with `onData` seeing every byte written. Reads are paused while too much waits
 * for the disk. Settles when everything read was written, or at the first error (the caller stops the
 * program that writes to `input`).
 */
function copyFiltered(
  input: Readable,
  file: FileHandle,
  filter: PasswordFilter,
  onData: (chunk: Buffer) => void,
): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    let failed = false;
    const fail = (err: unknown) => {
      if (failed) return;
      failed = true;
      input.destroy();
      reject(err instanceof Error ? err : new Error(String(err)));
    };
    const out = new BatchedWriter(file, () => input.resume(), fail);
    const take = (parts: Buffer[]) => {
      for (const part of parts) {
        onData(part);
        if (!out.push(part)) input.pause();
      }
    };
    input.on('data', (chunk: Buffer) => {
      if (failed) return;
      try {
        take(filter.filterChunk(chunk));
      } catch (err) {
        fail(err);
      }
    });
    input.once('end', () => {
      if (failed) return;
      try {
        take(filter.finish());
      } catch (err) {
        fail(err);
        return;
      }
      out.end().then(() => {
        if (!failed) resolve();
      }, fail);
    });
    input.once('error', fail);
  });
}

/**
 * Copies chunks into two reused buffers and writes each when full, one write in flight at a time: the
 * chunks die young (no garbage collection of retained reads) and each write is one large trip to the
 * thread pool.
 */
class BatchedWriter {
  private current: Buffer = Buffer.allocUnsafe(WRITE_BATCH_BYTES);
  private used = 0;
  /** The other buffer, while no write is in flight. */
  private spare: Buffer | undefined = Buffer.allocUnsafe(WRITE_BATCH_BYTES);
  /** Bytes that did not fit while both buffers were taken. */
  private queued: Buffer[] = [];
  private writing?: Promise<void>;
  /** Whether push() asked the reader to wait. */
  private full = false;

  constructor(
    private readonly file: FileHandle,
    private readonly onDrain: () => void,
    private readonly onError: (err: unknown) => void,
  ) {}

  /** False when the caller should stop reading until onDrain. */
  push(chunk: Buffer): boolean {
    this.queued.push(chunk);
    this.pump();
    if (this.queued.length === 0) return true;
    this.full = true;
    return false;
  }

  async end(): Promise<void> {
    while (this.writing) await this.writing;
    if (this.used > 0) await writeAll(this.file, this.current.subarray(0, this.used));
  }

  private pump(): void {
    for (;;) {
      while (this.queued.length > 0 && this.used < this.current.length) {
        const head = this.queued[0];
        const n = head.copy(this.current, this.used);
        this.used += n;
        if (n === head.length) this.queued.shift();
        else this.queued[0] = head.subarray(n);
      }
      if (this.used < this.current.length || !this.spare) break;
      this.startWrite(this.spare);
    }
    if (this.full && this.queued.length === 0) {
      this.full = false;
      this.onDrain();
    }
  }

  private startWrite(next: Buffer): void {
    const done = this.current;
    this.current = next;
    this.spare = undefined;
    this.used = 0;
    this.writing = writeAll(this.file, done).then(
      () => {
        this.writing = undefined;
        this.spare = done;
        this.pump();
      },
      (err: unknown) => {
        this.writing = undefined;
        this.queued = [];
        this.onError(err);
      },
    );
  }
}

/** Writes all of `data`: a regular file may take fewer bytes than asked. */
async function writeAll(file: FileHandle, data: Buffer): Promise<void> {
  for (let at = 0; at < data.length;) {
    const { bytesWritten } = await file.write(data, at, data.length - at);
    at += bytesWritten;
  }
}

/** The sha256 of a file, streamed: dumps can be far larger than memory. */
export async function fileSha256(path: string, signal?: AbortSignal): Promise<string> {
  const hash = createHash('sha256');
  // Large reads: the default 64 KiB makes the stream's own overhead a third of the hash's cost.
  await pipeline(createReadStream(path, { highWaterMark: 1024 * 1024 }), hash, { signal });
  return hash.digest('hex');
}
