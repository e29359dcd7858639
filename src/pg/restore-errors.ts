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

/** The errors a dump of a platform database always produces on a fresh target of the same platform. */
export function defaultExpectedErrors(adminRole: string, defaultDatabase: string): string[] {
  return [
    `role "${adminRole}" already exists`,
    'role "postgres" already exists',
    `database "${defaultDatabase}" already exists`,
  ];
}
