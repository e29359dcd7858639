// A resumable lexer for psql scripts, fed bytes in any chunking. It splits input the way psql does, so that
// what it calls a statement is what psql would send to the server: single-quoted literals ('' escapes;
// E'…' also with backslash escapes), double-quoted identifiers ("" escapes), dollar quotes, -- and nested
// /* */ comments, and backslash meta-command lines. A `;` outside parentheses ends a statement.
//
// Plain '…' literals are read as standard-conforming (no backslash escapes) whatever `SET
// standard_conforming_strings` says: pg_dump and pg_dumpall write every literal holding a backslash as E'…'
// when the setting is off (appendStringLiteralConn), so plain literals in their output never hold one.
// Not modelled, as pg_dumpall's role section never needs it: psql variables (:name), BEGIN ATOMIC bodies,
// client-only encodings (SJIS, BIG5…) whose multibyte characters may contain a quote or backslash byte.

/** What scan() stopped at. Positions are indexes into the chunk being scanned. */
export type SqlEvent =
  /** The first token of a statement begins at the returned position (not consumed yet). */
  | 'start'
  /** An unquoted word ended just before the returned position; `text` is its ASCII-lowercased bytes. */
  | 'word'
  /** A double-quoted identifier ended just before the returned position; `text` is its exact name. */
  | 'ident'
  /** Any other token (literal, number, operator, punctuation) ended just before the returned position. */
  | 'token'
  /** A `;` outside parentheses ended the statement; the returned position is just after it. */
  | 'end'
  /** A backslash meta-command's name ended at the returned position; `text` is the name (`connect`). */
  | 'meta'
  /** The chunk is used up; nothing else happened. */
  | 'more';

const enum State {
  Code,
  Word,
  Squote,
  SquoteEnd,
  Equote,
  EquoteEscape,
  EquoteEnd,
  Dquote,
  DquoteEnd,
  DollarTag,
  DollarBody,
  Dash,
  LineComment,
  Slash,
  BlockComment,
  BlockStar,
  BlockSlash,
  Backslash,
  MetaName,
  MetaRest,
}

/**
 * Words, identifiers and meta-command names are reported cut at this length: still unequal to any keyword,
 * meta-command or role name (PostgreSQL names are at most 63 bytes), and never held whole.
 */
const TEXT_MAX = 64;
/** A dollar-quote tag is kept whole to find its end; beyond this it is refused rather than held. */
const DOLLAR_TAG_MAX = 1024;

const DOLLAR = 0x24;
const SQUOTE = 0x27;
const DQUOTE = 0x22;
const BACKSLASH = 0x5c;
const NEWLINE = 0x0a;

export class SqlScanError extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

// Byte classes by table: the role section is scanned once per dump, mostly by code not yet optimized.
const SPACE = 1; // psql's {space}: space, \t, \n, \v, \f, \r
const WORD_START = 2; // a letter, _ or any non-ASCII byte
const WORD_PART = 4; // also a digit or $
const CLASS = new Uint8Array(256);
for (let b = 0; b < 256; b++) {
  if (b === 0x20 || (b >= 0x09 && b <= 0x0d)) CLASS[b] |= SPACE;
  if ((b >= 0x61 && b <= 0x7a) || (b >= 0x41 && b <= 0x5a) || b === 0x5f || b >= 0x80) {
    CLASS[b] |= WORD_START | WORD_PART;
  }
  if ((b >= 0x30 && b <= 0x39) || b === DOLLAR) CLASS[b] |= WORD_PART;
}

function lower(b: number): number {
  return b >= 0x41 && b <= 0x5a ? b + 0x20 : b;
}

export class SqlScanner {
  /** What the last scan() or finish() stopped at. */
  event: SqlEvent = 'more';
  /** The text of the last `word`, `ident` or `meta` event (its first 64 bytes), as latin1: one char a byte. */
  get text(): string {
    return this.textBuf.toString('latin1', 0, this.textLength);
  }
  /** Whether a statement has begun and not yet ended. */
  inStatement = false;
  /** When set, scan() stops only for `start`, `end` and `meta`: what a caller needs while it skips. */
  quiet = false;

  private state = State.Code;
  private parenDepth = 0;
  private commentDepth = 0;
  private readonly textBuf = Buffer.alloc(TEXT_MAX);
  private textLength = 0;
  private tag: number[] = [];
  private tagMatched = 0;

  /** Scans buf from pos to the next event or the end of buf; returns the position to resume from. */
  scan(buf: Buffer, pos: number): number {
    const len = buf.length;
    for (let i = pos; i < len; i++) {
      const b = buf[i];
      switch (this.state) {
        case State.Code: {
          if ((CLASS[b] & SPACE) !== 0) continue;
          if (b === 0x2d) {
            this.state = State.Dash;
            continue;
          }
          if (b === 0x2f) {
            this.state = State.Slash;
            continue;
          }
          if (b === BACKSLASH) {
            this.state = State.Backslash;
            continue;
          }
          if (!this.inStatement) {
            this.inStatement = true;
            return this.emit('start', i);
          }
          if ((CLASS[b] & WORD_START) !== 0) {
            this.startText();
            this.state = State.Word;
            i--; // the word starts at this byte
          } else if (b === SQUOTE) {
            this.state = State.Squote;
          } else if (b === DQUOTE) {
            this.startText();
            this.state = State.Dquote;
          } else if (b === DOLLAR) {
            this.tag = [];
            this.state = State.DollarTag;
          } else if (b === 0x3b && this.parenDepth === 0) {
            this.inStatement = false;
            return this.emit('end', i + 1);
          } else {
            if (b === 0x28) this.parenDepth++;
            else if (b === 0x29 && this.parenDepth > 0) this.parenDepth--;
            if (!this.quiet) return this.emit('token', i + 1);
          }
          continue;
        }
        case State.Word: {
          let end = i;
          while (end < len && (CLASS[buf[end]] & WORD_PART) !== 0) end++;
          for (let k = i; k < end && this.textLength < TEXT_MAX; k++) this.addText(lower(buf[k]));
          if (end === len) return this.emit('more', len);
          if (buf[end] === SQUOTE && this.textLength === 1 && this.textBuf[0] === 0x65) {
            this.state = State.Equote; // E'…': the e was a prefix, not a word
            i = end;
            continue;
          }
          this.state = State.Code;
          if (!this.quiet) return this.emit('word', end);
          i = end - 1;
          continue;
        }
        case State.Squote: {
          // Long runs (password hashes, comments) are skipped natively; i lands on the closing quote.
          const quote = b === SQUOTE ? i : buf.indexOf(SQUOTE, i);
          if (quote === -1) return this.emit('more', len);
          this.state = State.SquoteEnd;
          i = quote;
          continue;
        }
        case State.SquoteEnd:
          if (b === SQUOTE) {
            this.state = State.Squote;
            continue;
          }
          this.state = State.Code;
          if (!this.quiet) return this.emit('token', i);
          i--;
          continue;
        case State.Equote:
          if (b === BACKSLASH) this.state = State.EquoteEscape;
          else if (b === SQUOTE) this.state = State.EquoteEnd;
          continue;
        case State.EquoteEscape:
          this.state = State.Equote;
          continue;
        case State.EquoteEnd:
          if (b === SQUOTE) {
            this.state = State.Equote;
            continue;
          }
          this.state = State.Code;
          if (!this.quiet) return this.emit('token', i);
          i--;
          continue;
        case State.Dquote: {
          const quote = b === DQUOTE ? i : buf.indexOf(DQUOTE, i);
          const end = quote === -1 ? len : quote;
          for (let k = i; k < end && this.textLength < TEXT_MAX; k++) this.addText(buf[k]);
          if (quote === -1) return this.emit('more', len);
          this.state = State.DquoteEnd;
          i = quote;
          continue;
        }
        case State.DquoteEnd:
          if (b === DQUOTE) {
            this.addText(DQUOTE);
            this.state = State.Dquote;
            continue;
          }
          this.state = State.Code;
          if (!this.quiet) return this.emit('ident', i);
          i--;
          continue;
        case State.DollarTag:
          if (b === DOLLAR) {
            this.tag.push(DOLLAR);
            this.tag.unshift(DOLLAR);
            this.tagMatched = 0;
            this.state = State.DollarBody;
            continue;
          }
          if ((CLASS[b] & (this.tag.length === 0 ? WORD_START : WORD_PART)) !== 0) {
            if (this.tag.length >= DOLLAR_TAG_MAX) {
              throw new SqlScanError(`a dollar-quote tag is longer than ${DOLLAR_TAG_MAX} bytes`);
            }
            this.tag.push(b);
            continue;
          }
          // Not a dollar quote: a lone `$` (a parameter such as $1 or an operator), then whatever the tag
          // bytes were, which psql reads again as a word.
          this.state = State.Word;
          if (this.tag.length === 0) this.state = State.Code;
          this.startText();
          for (const t of this.tag) this.addText(lower(t));
          if (!this.quiet) return this.emit('token', i);
          i--;
          continue;
        case State.DollarBody:
          // The tag holds no `$`, so after a mismatch the only place a new match can begin is a `$`.
          if (b === this.tag[this.tagMatched]) {
            this.tagMatched++;
            if (this.tagMatched === this.tag.length) {
              this.state = State.Code;
              if (!this.quiet) return this.emit('token', i + 1);
            }
          } else {
            this.tagMatched = b === DOLLAR ? 1 : 0;
          }
          continue;
        case State.Dash:
          if (b === 0x2d) {
            this.state = State.LineComment;
            continue;
          }
          this.state = State.Code;
          this.inStatement = true;
          if (!this.quiet) return this.emit('token', i);
          i--;
          continue;
        case State.LineComment:
        case State.MetaRest: {
          // Both end with their line: psql reads a meta-command's arguments from the rest of it, never beyond.
          const newline = b === NEWLINE ? i : buf.indexOf(NEWLINE, i);
          if (newline === -1) return this.emit('more', len);
          this.state = State.Code;
          i = newline;
          continue;
        }
        case State.Slash:
          if (b === 0x2a) {
            this.commentDepth = 1;
            this.state = State.BlockComment;
            continue;
          }
          this.state = State.Code;
          this.inStatement = true;
          if (!this.quiet) return this.emit('token', i);
          i--;
          continue;
        case State.BlockComment:
          if (b === 0x2a) this.state = State.BlockStar;
          else if (b === 0x2f) this.state = State.BlockSlash;
          continue;
        case State.BlockStar:
          if (b === 0x2f) {
            this.commentDepth--;
            this.state = this.commentDepth === 0 ? State.Code : State.BlockComment;
          } else if (b !== 0x2a) {
            this.state = State.BlockComment;
          }
          continue;
        case State.BlockSlash:
          if (b === 0x2a) {
            this.commentDepth++;
            this.state = State.BlockComment;
          } else if (b !== 0x2f) {
            this.state = State.BlockComment;
          }
          continue;
        case State.Backslash:
          if (b === 0x3b || b === 0x3a) {
            // psql's \; and \: put the character in the query without ending the statement.
            this.state = State.Code;
            this.inStatement = true;
            if (!this.quiet) return this.emit('token', i + 1);
            continue;
          }
          this.startText();
          this.state = State.MetaName;
          i--; // the name starts at this byte
          continue;
        case State.MetaName:
          if ((CLASS[b] & SPACE) !== 0 || b === BACKSLASH) {
            this.state = State.MetaRest;
            return this.emit('meta', i);
          }
          this.addText(b);
          continue;
      }
    }
    return this.emit('more', len);
  }

  /**
   * The input ended: completes a token cut short by the end (psql sends an unterminated last statement
   * at the end of its input). Returns that token's event, or 'more' when there was none.
   */
  finish(): SqlEvent {
    const state = this.state;
    this.state = State.Code;
    switch (state) {
      case State.Word:
        this.emit('word', 0);
        return this.event;
      case State.DquoteEnd:
        this.emit('ident', 0);
        return this.event;
      case State.MetaName:
        this.emit('meta', 0);
        return this.event;
      case State.SquoteEnd:
      case State.EquoteEnd:
      case State.Dash:
      case State.Slash:
      case State.DollarTag:
        return (this.event = 'token');
      default:
        return (this.event = 'more');
    }
  }

  private emit(event: SqlEvent, pos: number): number {
    this.event = event;
    return pos;
  }

  private startText(): void {
    this.textLength = 0;
  }

  private addText(b: number): void {
    if (this.textLength < TEXT_MAX) this.textBuf[this.textLength++] = b;
  }
}
