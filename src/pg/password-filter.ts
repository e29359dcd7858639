import { Transform, type TransformCallback } from 'node:stream';

// The guide pipes pg_dumpall through `grep -E -i -v 'ALTER ROLE aptible .*PASSWORD'` so the restore cannot
// overwrite the target admin role's password with the source's. This filter does that job more narrowly:
//  - only whole statement lines that START with `ALTER ROLE <admin>` are candidates (pg_dumpall never indents
//    them); grep would also cut such text out of function bodies and table data, silently corrupting them;
//  - never inside COPY data: a row that happens to contain that text is data, and dropping it loses a row;
//  - the role name is parsed as an SQL identifier, so `aptible2` or `"Aptible"` are other roles, while
//    unquoted names compare case-insensitively as PostgreSQL folds them;
//  - `ALTER ROLE <admin> SET password_encryption ...` (a setting, not a password) is kept.
// Every other byte passes unchanged: the dump is handled as bytes, never decoded, so invalid UTF-8, CRLF,
// psql meta-commands (\connect, \restrict, \unrestrict) and a last line without newline survive as they are.

const NEWLINE = 0x0a;
const CR = 0x0d;
const ALTER_ROLE = Buffer.from('ALTER ROLE ');
const COPY_PREFIX = Buffer.from('COPY ');
const COPY_SUFFIX = Buffer.from(' FROM stdin;');
const COPY_END = Buffer.from('\\.');
// In COPY text data a backslash is always doubled, so a line starting with a meta-command cannot be data:
// seeing one means a COPY block was misdetected, and filtering must resume.
const CONNECT = Buffer.from('\\connect ');
const HEAD_MAX = 16;
const TAIL_MAX = 16;

type LineMode = 'undecided' | 'pass' | 'hold';

export class PasswordFilter extends Transform {
  /** Lines removed so far. */
  droppedStatements = 0;

  private readonly adminRole: string;
  private inCopy = false;
  private mode: LineMode = 'undecided';
  private held: Buffer[] = [];
  private readonly head = Buffer.alloc(HEAD_MAX);
  private headLength = 0;
  private readonly tail = Buffer.alloc(TAIL_MAX);
  private tailLength = 0;
  private lineLength = 0;

  constructor(adminRole: string) {
    super();
    if (!adminRole) throw new Error('the password filter needs the admin role name');
    // Lines are inspected as latin1 strings: one char per byte, so any byte sequence round-trips.
    this.adminRole = Buffer.from(adminRole, 'utf8').toString('latin1');
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    const out: Buffer[] = [];
    let pos = 0;
    if (this.lineLength > 0) {
      // The previous chunk ended mid-line.
      const nl = chunk.indexOf(NEWLINE);
      const end = nl === -1 ? chunk.length : nl + 1;
      this.feed(chunk.subarray(0, end), out);
      if (nl !== -1) this.endLine(out);
      pos = end;
    }
    // Whole lines inside the chunk take the fast path: no copies, kept lines leave as one slice.
    let keptFrom = pos;
    for (let nl = chunk.indexOf(NEWLINE, pos); nl !== -1; nl = chunk.indexOf(NEWLINE, pos)) {
      if (this.wholeLine(chunk, pos, nl)) {
        if (pos > keptFrom) out.push(chunk.subarray(keptFrom, pos));
        keptFrom = nl + 1;
      }
      pos = nl + 1;
    }
    if (pos > keptFrom) out.push(chunk.subarray(keptFrom, pos));
    if (pos < chunk.length) this.feed(chunk.subarray(pos), out);
    if (out.length > 0) this.push(out.length === 1 ? out[0] : Buffer.concat(out));
    callback();
  }

  /** Judges the line chunk[start..nl] (nl is its newline); returns true when it is to be dropped. */
  private wholeLine(chunk: Buffer, start: number, nl: number): boolean {
    const contentEnd = nl > start && chunk[nl - 1] === CR ? nl - 1 : nl;
    if (this.inCopy) {
      const bare =
        contentEnd - start === COPY_END.length &&
        chunk.compare(COPY_END, 0, COPY_END.length, start, contentEnd) === 0;
      if (bare || hasPrefix(chunk, start, nl, CONNECT)) this.inCopy = false;
      return false;
    }
    const first = chunk[start];
    if (first === 0x41 || first === 0x61) {
      if (
        hasPrefixIgnoringCase(chunk, start, nl, ALTER_ROLE) &&
        isAdminPasswordLine(chunk.toString('latin1', start, nl + 1), this.adminRole)
      ) {
        this.droppedStatements++;
        return true;
      }
    } else if (first === 0x43 && hasPrefix(chunk, start, nl, COPY_PREFIX)) {
      this.inCopy = hasSuffix(chunk, start, contentEnd, COPY_SUFFIX);
    }
    return false;
  }

  override _flush(callback: TransformCallback): void {
    const out: Buffer[] = [];
    if (this.lineLength > 0) this.endLine(out);
    if (out.length > 0) this.push(Buffer.concat(out));
    callback();
  }

  private feed(segment: Buffer, out: Buffer[]): void {
    if (this.headLength < HEAD_MAX) {
      const n = segment.copy(
        this.head,
        this.headLength,
        0,
        Math.min(segment.length, HEAD_MAX - this.headLength),
      );
      this.headLength += n;
    }
    this.remember(segment);
    this.lineLength += segment.length;

    if (this.mode === 'pass') {
      out.push(segment);
      return;
    }
    this.held.push(segment);
    if (this.mode === 'undecided') {
      this.mode = this.decide();
      if (this.mode === 'pass') this.release(out);
    }
  }

  /** Keeps the last bytes of the line, to recognise a `COPY ... FROM stdin;` line without holding it. */
  private remember(segment: Buffer): void {
    if (segment.length >= TAIL_MAX) {
      segment.copy(this.tail, 0, segment.length - TAIL_MAX);
      this.tailLength = TAIL_MAX;
      return;
    }
    const keep = Math.min(this.tailLength, TAIL_MAX - segment.length);
    this.tail.copy(this.tail, 0, this.tailLength - keep, this.tailLength);
    segment.copy(this.tail, keep);
    this.tailLength = keep + segment.length;
  }

  /** Whether the line seen so far could still be an admin password line (then it is held until its end). */
  private decide(): LineMode {
    if (this.inCopy) return 'pass';
    const n = Math.min(this.headLength, ALTER_ROLE.length);
    if (!hasPrefixIgnoringCase(this.head, 0, n, ALTER_ROLE.subarray(0, n))) return 'pass';
    return n === ALTER_ROLE.length ? 'hold' : 'undecided';
  }

  private release(out: Buffer[]): void {
    for (const b of this.held) out.push(b);
    this.held = [];
  }

  private endLine(out: Buffer[]): void {
    if (this.mode !== 'pass') {
      const line = Buffer.concat(this.held);
      this.held = [];
      if (!this.inCopy && isAdminPasswordLine(line.toString('latin1'), this.adminRole)) {
        this.droppedStatements++;
      } else {
        out.push(line);
      }
    }
    this.trackCopy();
    this.mode = 'undecided';
    this.headLength = 0;
    this.tailLength = 0;
    this.lineLength = 0;
  }

  private trackCopy(): void {
    const content = stripEol(this.tail.subarray(0, this.tailLength));
    if (this.inCopy) {
      const bare = this.lineLength <= COPY_END.length + 2 && content.equals(COPY_END);
      if (bare || hasPrefix(this.head, 0, this.headLength, CONNECT)) this.inCopy = false;
    } else if (hasPrefix(this.head, 0, this.headLength, COPY_PREFIX)) {
      this.inCopy = hasSuffix(content, 0, content.length, COPY_SUFFIX);
    }
  }
}

export function createPasswordFilter(adminRole: string): PasswordFilter {
  return new PasswordFilter(adminRole);
}

/**
 * `ALTER ROLE <admin> [WITH] ... PASSWORD ...` — the statement pg_dumpall writes for a role's attributes and
 * password hash. `line` is latin1 (one char per byte); `adminRole` is the role's UTF-8 bytes as latin1.
 */
export function isAdminPasswordLine(line: string, adminRole: string): boolean {
  const prefix = /^ALTER ROLE\s+/i.exec(line);
  if (!prefix) return false;
  const ident = parseIdentifier(line.slice(prefix[0].length));
  if (!ident || ident.name !== adminRole) return false;
  const rest = line.slice(prefix[0].length + ident.length);
  if (rest !== '' && !/^\s/.test(rest)) return false;
  // Role settings (`SET password_encryption ...`, `IN DATABASE ... SET`) and renames are not password changes.
  if (/^\s+(SET|RESET|IN|RENAME)\b/i.test(rest)) return false;
  return /\bPASSWORD\b/i.test(rest);
}

/** An SQL identifier at the start of `text`: quoted (exact, `""` is a quote) or unquoted (ASCII-folded). */
function parseIdentifier(text: string): { name: string; length: number } | undefined {
  if (text.startsWith('"')) {
    let name = '';
    for (let i = 1; i < text.length; i++) {
      if (text[i] !== '"') {
        name += text[i];
      } else if (text[i + 1] === '"') {
        name += '"';
        i++;
      } else {
        return { name, length: i + 1 };
      }
    }
    return undefined;
  }
  const match = /^[A-Za-z_\x80-\xff][A-Za-z0-9_$\x80-\xff]*/.exec(text);
  if (!match) return undefined;
  return { name: match[0].replace(/[A-Z]/g, (c) => c.toLowerCase()), length: match[0].length };
}

function upper(byte: number): number {
  return byte >= 0x61 && byte <= 0x7a ? byte - 0x20 : byte;
}

function stripEol(b: Buffer): Buffer {
  let end = b.length;
  if (end > 0 && b[end - 1] === NEWLINE) end--;
  if (end > 0 && b[end - 1] === CR) end--;
  return b.subarray(0, end);
}

/** Whether b[start..end) begins with `prefix` (uppercase ASCII), ignoring ASCII case. */
function hasPrefixIgnoringCase(b: Buffer, start: number, end: number, prefix: Buffer): boolean {
  if (end - start < prefix.length) return false;
  for (let i = 0; i < prefix.length; i++) {
    if (upper(b[start + i]) !== prefix[i]) return false;
  }
  return true;
}

function hasPrefix(b: Buffer, start: number, end: number, prefix: Buffer): boolean {
  return (
    end - start >= prefix.length && b.compare(prefix, 0, prefix.length, start, start + prefix.length) === 0
  );
}

function hasSuffix(b: Buffer, start: number, end: number, suffix: Buffer): boolean {
  return end - start >= suffix.length && b.compare(suffix, 0, suffix.length, end - suffix.length, end) === 0;
}
