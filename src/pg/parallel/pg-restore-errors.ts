// pg_restore reports each problem on stderr as `pg_restore: <level>: <text>`, the lines after it (the
// server's DETAIL/CONTEXT, `Command was: <statement>`) belonging to it. A server error it ignored reads
//   pg_restore: error: could not execute query: ERROR:  relation "t" already exists
//   Command was: CREATE TABLE public.t (...
// or `pg_restore: error: COPY failed for table "t": ERROR:  ...`. These are rewritten to start with the
// server's `ERROR:  <text>`, as psql prints it, so the plan's expected errors (restore-errors.ts) match
// them exactly as they match the guide's; every other error stays as pg_restore wrote it (unexpected).

const MESSAGE_START = /^pg_restore: (error|warning|detail|hint|info): ?/;
/** How an ignored server error begins, after `pg_restore: error: `. */
const SERVER_ERROR =
  /^(?:could not execute query|COPY failed for table ".*"|error returned by PQputCopyData|error returned by PQputCopyEnd|query failed): ((?:ERROR|FATAL|PANIC):\s.*)$/;
/** pg_restore's own tally of the ignored errors: said by the caller's count, not an error of its own. */
const IGNORED_TALLY = /^pg_restore: warning: errors ignored on restore: \d+$/;
/** Of a `Command was:` statement, this much is kept: enough to find it, not a whole function body. */
const COMMAND_LINES = 8;
const COMMAND_CHARS = 1000;

/**
 * The errors in pg_restore's stderr, each one string, server errors as `ERROR:  <text>` followed by what
 * pg_restore said with it and `(pg_restore, database "<name>")`. Warnings are left out, as psql's are.
 */
export function parsePgRestoreErrors(stderr: string, database: string): string[] {
  const messages: { level: string; lines: string[] }[] = [];
  for (const line of stderr.replace(/\r\n/g, '\n').split('\n')) {
    const start = MESSAGE_START.exec(line);
    // pg_restore 15+ writes detail and hint lines of its own messages with the same prefix.
    if (start && (start[1] === 'error' || start[1] === 'warning' || messages.length === 0)) {
      messages.push({ level: start[1], lines: [line] });
    } else if (messages.length > 0) {
      messages[messages.length - 1].lines.push(line);
    } else if (line.trim() !== '') {
      messages.push({ level: 'error', lines: [line] });
    }
  }
  const where = `(pg_restore, database ${JSON.stringify(database)})`;
  return messages
    .filter((m) => m.level === 'error' && !IGNORED_TALLY.test(m.lines[0]))
    .map((m) => [...rewrite(m.lines), where].join('\n'));
}

function rewrite(lines: string[]): string[] {
  const body = trimCommand(lines.slice(1));
  const text = lines[0].replace(MESSAGE_START, '');
  const server = SERVER_ERROR.exec(text);
  if (!server) return [lines[0], ...body];
  // The part before the server's message says where it happened: `COPY failed for table "t"` and the like.
  const what = text.slice(0, text.length - server[1].length).replace(/:\s*$/, '');
  return [server[1], ...body, `pg_restore: ${what}`];
}

function trimCommand(lines: string[]): string[] {
  const out: string[] = [];
  let inCommand = false;
  let commandLines = 0;
  let commandChars = 0;
  for (const line of lines) {
    if (line.startsWith('Command was: ')) inCommand = true;
    if (inCommand) {
      commandLines++;
      commandChars += line.length + 1;
      if (commandLines > COMMAND_LINES || commandChars > COMMAND_CHARS) {
        if (out[out.length - 1] !== '...') out.push('...');
        continue;
      }
    }
    out.push(line);
  }
  while (out.length > 0 && out[out.length - 1].trim() === '') out.pop();
  return out;
}

/** pg_restore's count of the errors it ignored (0 when it printed none). */
export function ignoredErrorCount(stderr: string): number {
  const match = /^pg_restore: warning: errors ignored on restore: (\d+)$/m.exec(stderr);
  return match ? Number(match[1]) : 0;
}
