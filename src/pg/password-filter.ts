import { Transform, type TransformCallback } from 'node:stream';
import { PgshiftError } from '../errors';
import { type SqlEvent, SqlScanError, SqlScanner } from './sql-scan';

// The guide pipes pg_dumpall through `grep -v 'ALTER ROLE aptible .*PASSWORD'` so the restore cannot overwrite
// the target admin role's password with the source's. grep removes lines, wherever they stand: a line of a
// function body, of a multi-line literal or of table data. This filter removes statements, and only in the
// one place pg_dumpall writes passwords: its role section, everything before the first `\connect` that
// stands between statements (pg_dumpall writes roles, role settings, memberships and tablespaces first,
// then each database after a `\connect`). There it reads the script as psql does (sql-scan.ts), so a role
// name or a role comment holding newlines, the statement's text or a `\connect` is one token, and removes
// each `ALTER ROLE <admin> … PASSWORD …;` statement with the line ending right after it. Everything after the role section passes unread:
// no byte of a database's part is ever looked at, and the filter costs what a pipe costs.
// The dump is handled as bytes, never decoded: invalid UTF-8, CRLF and a last line without newline pass as
// they are.

/**
 * The most a statement of the role section is held while it may still be the admin's password statement.
 * Only statements that begin `ALTER ROLE <admin>` are held, and only until the word PASSWORD or a first
 * option such as SET shows what they are; pg_dumpall writes those in well under a kilobyte. Past the limit
 * the dump is refused, not passed: the rest of that statement could still set the password.
 */
export const HOLD_LIMIT_BYTES = 16 * 1024 * 1024;

/** The dump cannot be filtered safely; a retry would read the same dump and fail the same way. */
export class DumpFilterError extends PgshiftError {}

type StatementState =
  /** Between statements: bytes pass. */
  | 'none'
  /** Might be the admin's password statement: bytes are held until that is known. */
  | 'hold'
  /** Not the admin's password statement: bytes pass until its end. */
  | 'pass'
  /** The admin's password statement: bytes are dropped until its end. */
  | 'drop'
  /** Just after a dropped statement: a line ending right here goes with it. */
  | 'dropped'
  /** A dropped statement was followed by a CR, held until we know whether an LF follows. */
  | 'droppedCR';

const LF = 0x0a;
const CR = 0x0d;
const CR_BYTES = Buffer.from([CR]);
/** PostgreSQL names are at most NAMEDATALEN - 1 bytes. */
const NAME_MAX_BYTES = 63;

export class PasswordFilter extends Transform {
  /** Statements removed so far. */
  droppedStatements = 0;

  private readonly adminRole: string;
  private readonly scanner = new SqlScanner();
  /** Set once the role section ended: from there on chunks pass unread. */
  private passing = false;
  private statement: StatementState = 'none';
  private tokenIndex = 0;
  private sawWith = false;
  private held: Buffer[] = [];
  private heldBytes = 0;
  private out: Buffer[] = [];

  constructor(adminRole: string) {
    super();
    const bytes = Buffer.byteLength(adminRole, 'utf8');
    if (bytes === 0 || bytes > NAME_MAX_BYTES || adminRole.includes('\0')) {
      throw new RangeError(`the admin role name must be 1 to ${NAME_MAX_BYTES} bytes without NUL`);
    }
    // Compared with the scanner's text: one latin1 char per byte, so any byte sequence round-trips.
    this.adminRole = Buffer.from(adminRole, 'utf8').toString('latin1');
  }

  /**
   * The same filter without the stream machinery, for a caller that reads and writes by itself (dump.ts):
   * the bytes of `chunk` to keep, in order (slices of it where possible). Throws DumpFilterError.
   */
  filterChunk(chunk: Buffer): Buffer[] {
    if (this.passing) return [chunk];
    try {
      this.scanChunk(chunk);
    } catch (err) {
      throw asFilterError(err);
    }
    return this.takeOut();
  }

  /** What is still held when the input ends; call once, after the last filterChunk. */
  finish(): Buffer[] {
    if (this.passing) return [];
    // psql runs a last statement that lacks its `;`, so it is judged like any other.
    const event = this.scanner.finish();
    if (this.statement === 'hold' && isToken(event) && this.judge(event) === 'drop') this.dropStatement();
    if (this.statement === 'hold') this.release();
    if (this.statement === 'droppedCR') this.out.push(CR_BYTES);
    return this.takeOut();
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    if (this.passing) {
      callback(null, chunk);
      return;
    }
    let out: Buffer[];
    try {
      out = this.filterChunk(chunk);
    } catch (err) {
      callback(err as Error);
      return;
    }
    this.pushAll(out);
    callback();
  }

  override _flush(callback: TransformCallback): void {
    this.pushAll(this.finish());
    callback();
  }

  private scanChunk(chunk: Buffer): void {
    let from = 0; // bytes before `from` are settled: passed, held or dropped
    let pos = 0;
    while (pos < chunk.length) {
      if (this.statement === 'dropped' || this.statement === 'droppedCR') {
        const b = chunk[pos];
        if (b === LF) {
          from = ++pos;
          this.statement = 'none';
          continue;
        }
        if (b === CR && this.statement === 'dropped') {
          from = ++pos;
          this.statement = 'droppedCR';
          continue;
        }
        // What follows the statement on its line stays, and so does a CR that did not end the line.
        if (this.statement === 'droppedCR') this.out.push(CR_BYTES);
        this.statement = 'none';
      }

      // Only a statement on hold needs its tokens; otherwise the scanner runs on to what ends it.
      this.scanner.quiet = this.statement !== 'hold';
      pos = this.scanner.scan(chunk, pos);
      const event = this.scanner.event;
      if (event === 'more') break;
      if (event === 'start') {
        this.settle(chunk, from, pos);
        from = pos;
        this.statement = 'hold';
        this.tokenIndex = 0;
        this.sawWith = false;
      } else if (event === 'meta') {
        const name = this.scanner.text;
        if (!this.scanner.inStatement && (name === 'connect' || name === 'c')) {
          // The first database begins: the role section is over.
          this.out.push(chunk.subarray(from));
          this.passing = true;
          return;
        }
      } else if (event === 'end') {
        if (this.statement === 'drop') {
          from = pos;
          this.statement = 'dropped';
        } else {
          // Held bytes, if any, come out ahead of the statement's bytes in this chunk, still unsettled.
          this.release();
          this.statement = 'none';
        }
      } else if (this.statement === 'hold') {
        const verdict = this.judge(event);
        if (verdict === 'keep') {
          this.release();
          this.statement = 'pass';
        } else if (verdict === 'drop') {
          this.dropStatement();
          from = pos;
        }
      }
    }
    this.settle(chunk, from, chunk.length);
  }

  /** Whether the held statement, given its latest token, is kept, dropped or still undecided. */
  private judge(event: SqlEvent): 'keep' | 'drop' | 'hold' {
    const index = this.tokenIndex++;
    const text = this.scanner.text;
    const word = event === 'word' ? text : '';
    let keep: boolean | undefined;
    if (index === 0) keep = word === 'alter' ? undefined : true;
    else if (index === 1) keep = word === 'role' ? undefined : true;
    else if (index === 2) {
      // Unquoted names are folded to lower case as PostgreSQL does; quoted ones are exact.
      const isName = event === 'word' || event === 'ident';
      keep = isName && text === this.adminRole ? undefined : true;
    } else if (word === 'password') {
      keep = false;
    } else if (index === 3 && word === 'with') {
      this.sawWith = true;
    } else if (index === 3 || (index === 4 && this.sawWith)) {
      // `ALTER ROLE x SET … / RESET … / IN DATABASE … / RENAME TO …` change settings or the name, never the
      // password, whatever words follow (a database may be called password).
      if (word === 'set' || word === 'reset' || word === 'in' || word === 'rename') keep = true;
    }
    return keep === undefined ? 'hold' : keep ? 'keep' : 'drop';
  }

  private dropStatement(): void {
    this.held = [];
    this.heldBytes = 0;
    this.statement = 'drop';
    this.droppedStatements++;
  }

  /** Routes chunk[from, to) by the state of the statement it belongs to. */
  private settle(chunk: Buffer, from: number, to: number): void {
    if (to <= from) return;
    if (this.statement === 'drop') return;
    if (this.statement !== 'hold') {
      this.out.push(chunk.subarray(from, to));
      return;
    }
    this.heldBytes += to - from;
    if (this.heldBytes > HOLD_LIMIT_BYTES) {
      throw new DumpFilterError(
        `the dump's role section has an ALTER ROLE statement for the admin role that runs past ` +
          `${HOLD_LIMIT_BYTES / 1024 / 1024} MiB without showing whether it sets the password; pg_dumpall ` +
          'writes no such statement, so this dump cannot be filtered safely: check what produced it',
      );
    }
    // A copy: holding a slice would keep the whole chunk alive.
    this.held.push(Buffer.from(chunk.subarray(from, to)));
  }

  private release(): void {
    for (const b of this.held) this.out.push(b);
    this.held = [];
    this.heldBytes = 0;
  }

  private takeOut(): Buffer[] {
    const out = this.out;
    this.out = [];
    return out;
  }

  private pushAll(out: Buffer[]): void {
    if (out.length === 0) return;
    this.push(out.length === 1 ? out[0] : Buffer.concat(out));
  }
}

function isToken(event: SqlEvent): boolean {
  return event === 'word' || event === 'ident' || event === 'token';
}

function asFilterError(err: unknown): Error {
  if (err instanceof SqlScanError) {
    return new DumpFilterError(
      `the dump's role section cannot be read safely (${err.message}); check what produced it`,
    );
  }
  return err instanceof Error ? err : new Error(String(err));
}

export function createPasswordFilter(adminRole: string): PasswordFilter {
  return new PasswordFilter(adminRole);
}
