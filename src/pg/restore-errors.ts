// psql writes one message per problem to stderr; when it reads a file each message starts with
// `psql:<file>:<line>: `. Messages are kept whole so the operator sees the full story.

/** Severities that report a problem; NOTICE/WARNING/INFO/LOG/DEBUG do not fail a restore. */
const HARMLESS = /^(NOTICE|WARNING|INFO|LOG|DEBUG\d?):/;
// `psql:<file>:<line>: ` — the file name may contain colons, so the shortest prefix up to `:<digits>: ` wins.
const FILE_PREFIX = /^psql:.*?:\d+: /;
const SEVERITY_LINE = /^[A-Z]+:\s/;
const DETAIL_LINE = /^(DETAIL|HINT|CONTEXT|QUERY|STATEMENT|LOCATION):/;

/**
 * Splits psql's stderr into messages and returns those that are errors, each as one multi-line string.
 * A message starts with a `psql:` line or an unprefixed severity line (`ERROR:  ...`); every other line
 * (LINE n:, the caret, DETAIL/HINT/CONTEXT, and message text spanning lines such as `server closed the
 * connection unexpectedly`) belongs to the message before it.
 */
export function parsePsqlErrors(stderr: string): string[] {
  const messages: string[][] = [];
  let current: string[] | undefined;
  for (const line of stderr.replace(/\r\n/g, '\n').split('\n')) {
    if (line.trim() === '') continue;
    const starts =
      !current || line.startsWith('psql:') || (SEVERITY_LINE.test(line) && !DETAIL_LINE.test(line));
    if (starts) {
      current = [line];
      messages.push(current);
    } else {
      current!.push(line);
    }
  }
  return messages.filter((m) => isError(m[0])).map((m) => m.join('\n'));
}

function severityText(firstLine: string): string {
  return firstLine.replace(FILE_PREFIX, '').replace(/^psql: /, '');
}

function isError(firstLine: string): boolean {
  return !HARMLESS.test(severityText(firstLine));
}

export interface ClassifiedErrors {
  /** Errors the plan allows (e.g. the platform's admin role already exists), exactly as psql printed them. */
  expected: string[];
  /** Everything else: server ERRORs, FATALs, psql's own errors (failed \connect, lost connection...). */
  unexpected: string[];
}

function normalise(text: string): string {
  return text.replace(/\s+/g, ' ').trim();
}

/** The message text after `ERROR:` of a server error, or undefined for anything else (FATAL, psql errors...). */
export function errorMessageText(error: string): string | undefined {
  const first = severityText(error.split('\n')[0]);
  const match = /^ERROR:\s+(.*)$/.exec(first);
  return match ? normalise(match[1]) : undefined;
}

/**
 * An expected entry matches an ERROR whose message text (after `ERROR:`) equals it, whitespace-normalised.
 * Exact match, not substring: `role "aptible" already exists` must not excuse `role "aptible2" already exists`.
 * Only ERRORs can be expected; FATAL and connection failures always count as unexpected.
 */
export function classifyRestoreErrors(errors: string[], expected: readonly string[]): ClassifiedErrors {
  const allowed = new Set(expected.map((e) => normalise(e.replace(/^\s*ERROR:/, ''))));
  const result: ClassifiedErrors = { expected: [], unexpected: [] };
  for (const error of errors) {
    const text = errorMessageText(error);
    if (text !== undefined && allowed.has(text)) result.expected.push(error);
    else result.unexpected.push(error);
  }
  return result;
}

// What psql says when its connection is gone or could not be made: the server did not judge the dump, so a
// retry (from a reset target) may well succeed. PostgreSQL's own refusals (a database or role that does not
// exist, a failed password) fail the same way every time and stay unexpected errors.
const CONNECTION_DROPPED = [
  /server closed the connection unexpectedly/,
  /connection to server was lost/,
  /terminating connection/,
  /could not connect to server/,
  /could not (receive|send) data (from|to) server/,
  /no connection to the server/,
  /SSL (SYSCALL error|connection has been closed unexpectedly)/,
  /the database system is (starting up|shutting down|in recovery mode|not yet accepting connections)/,
  /sorry, too many clients already|remaining connection slots are reserved/,
  /Connection (refused|reset by peer|timed out)|timeout expired|No route to host|Network is unreachable/,
  /could not translate host name/,
];
const CONNECTION_FAILED = /connection to server .* failed/;

/**
 * Whether an error says psql lost (or could not open) its connection, rather than that PostgreSQL rejected
 * a statement: "connection to server ... failed" counts unless the server refused it with a FATAL of its
 * own (e.g. a `\connect` to a database whose CREATE DATABASE failed earlier), which no retry changes.
 */
export function isConnectionFailure(error: string): boolean {
  if (CONNECTION_DROPPED.some((pattern) => pattern.test(error))) return true;
  return CONNECTION_FAILED.test(error) && !/FATAL:/.test(error);
}

// Errors that say the dump's text itself is broken, not that the target refused what the source holds:
// the SQL does not parse (SQLSTATE 42601), or COPY data does not fit the COPY's own column list.
const MALFORMED_TEXT = new RegExp(
  '^(' +
    [
      'syntax error at or near',
      'syntax error at end of input',
      'unterminated (quoted string|quoted identifier|dollar-quoted string|/\\* comment|bit string literal|hexadecimal string literal)',
      'zero-length delimited identifier',
      'missing data for column',
      'extra data after last expected column',
      'end-of-copy marker (corrupt|does not match previous newline style)',
      'literal (carriage return|newline) found in data',
      'unterminated CSV quoted field',
    ].join('|') +
    ')',
);

/**
 * Whether an error shows the dump file is malformed (a defect of pgshift or pg_dumpall, or a corrupted
 * file) rather than something of the source's schema the target version does not accept: a syntax error,
 * an unterminated literal, a psql `invalid command \...`, or COPY data that does not match its columns
 * (`invalid input syntax` counts only inside a COPY: in a statement it may be the target's stricter rules).
 */
export function isMalformedDumpError(error: string): boolean {
  const first = severityText(error.split('\n')[0]);
  if (/^error: invalid command \\/.test(first)) return true;
  const text = errorMessageText(error);
  if (text === undefined) return false;
  if (MALFORMED_TEXT.test(text)) return true;
  return /^invalid input syntax/.test(text) && /^CONTEXT:\s+COPY /m.test(error);
}

/** The errors a dump of a platform database always produces on a fresh target of the same platform. */
export function defaultExpectedErrors(adminRole: string, defaultDatabase: string): string[] {
  return [
    `role "${adminRole}" already exists`,
    'role "postgres" already exists',
    `database "${defaultDatabase}" already exists`,
  ];
}
