import { unexpectedErrorsMessage } from '../src/activities/expected-errors';
import {
  classifyRestoreErrors,
  defaultExpectedErrors,
  errorMessageText,
  isConnectionFailure,
  isMalformedDumpError,
  parsePsqlErrors,
} from '../src/pg/restore-errors';

// Captured from psql 15 restoring pg_dumpall output into PostgreSQL 17.
const RESTORE_STDERR = [
  'psql:/work/dumps/m-1/dump.sql:16: ERROR:  role "app" already exists',
  'psql:/work/dumps/m-1/dump.sql:18: ERROR:  role "aptible" already exists',
  'psql:/work/dumps/m-1/dump.sql:20: ERROR:  role "postgres" already exists',
  'psql:/work/dumps/m-1/dump.sql:114: ERROR:  database "db" already exists',
  'psql:/work/dumps/m-1/dump.sql:301: ERROR:  syntax error at or near "bad"',
  'LINE 1: bad stuff;',
  '        ^',
  'psql:/work/dumps/m-1/dump.sql:305: ERROR:  duplicate key value violates unique constraint "dup_pkey"',
  'DETAIL:  Key (id)=(1) already exists.',
  'CONTEXT:  COPY dup, line 2',
  'psql:/work/dumps/m-1/dump.sql:310: WARNING:  careful',
  'psql:/work/dumps/m-1/dump.sql:311: NOTICE:  fyi',
  'psql:/work/dumps/m-1/dump.sql:400: error: \\connect: connection to server at "127.0.0.1", port 55417 failed: FATAL:  database "nonexist" does not exist',
  '',
].join('\n');

describe('parsePsqlErrors', () => {
  it('returns each error as a whole block, with its LINE/caret/DETAIL/CONTEXT lines', () => {
    expect(parsePsqlErrors(RESTORE_STDERR)).toEqual([
      'psql:/work/dumps/m-1/dump.sql:16: ERROR:  role "app" already exists',
      'psql:/work/dumps/m-1/dump.sql:18: ERROR:  role "aptible" already exists',
      'psql:/work/dumps/m-1/dump.sql:20: ERROR:  role "postgres" already exists',
      'psql:/work/dumps/m-1/dump.sql:114: ERROR:  database "db" already exists',
      'psql:/work/dumps/m-1/dump.sql:301: ERROR:  syntax error at or near "bad"\nLINE 1: bad stuff;\n        ^',
      'psql:/work/dumps/m-1/dump.sql:305: ERROR:  duplicate key value violates unique constraint "dup_pkey"\n' +
        'DETAIL:  Key (id)=(1) already exists.\nCONTEXT:  COPY dup, line 2',
      'psql:/work/dumps/m-1/dump.sql:400: error: \\connect: connection to server at "127.0.0.1", port 55417 failed: FATAL:  database "nonexist" does not exist',
    ]);
  });

  it('ignores warnings and notices, and empty output', () => {
    expect(parsePsqlErrors('psql:d.sql:3: WARNING:  careful\npsql:d.sql:3: NOTICE:  fyi\n')).toEqual([]);
    expect(parsePsqlErrors('')).toEqual([]);
  });

  it('keeps a lost connection as errors, with the server text that spans lines', () => {
    const stderr = [
      'psql:sleep.sql:1: FATAL:  terminating connection due to administrator command',
      'psql:sleep.sql:1: server closed the connection unexpectedly',
      '\tThis probably means the server terminated abnormally',
      '\tbefore or while processing the request.',
      'psql:sleep.sql:1: error: connection to server was lost',
    ].join('\n');
    expect(parsePsqlErrors(stderr)).toEqual([
      'psql:sleep.sql:1: FATAL:  terminating connection due to administrator command',
      'psql:sleep.sql:1: server closed the connection unexpectedly\n' +
        '\tThis probably means the server terminated abnormally\n\tbefore or while processing the request.',
      'psql:sleep.sql:1: error: connection to server was lost',
    ]);
  });

  it('reads connection failures that have no file position', () => {
    const stderr =
      'psql: error: connection to server at "127.0.0.1", port 1 failed: Connection refused\n' +
      '\tIs the server running on that host and accepting TCP/IP connections?\n';
    expect(parsePsqlErrors(stderr)).toEqual([stderr.trimEnd()]);
  });

  it('handles CRLF output and file names with colons and spaces', () => {
    const stderr = 'psql:C:/dumps/my dump:1.sql:7: ERROR:  role "aptible" already exists\r\nHINT:  none\r\n';
    const errors = parsePsqlErrors(stderr);
    expect(errors).toEqual([
      'psql:C:/dumps/my dump:1.sql:7: ERROR:  role "aptible" already exists\nHINT:  none',
    ]);
    expect(errorMessageText(errors[0])).toBe('role "aptible" already exists');
  });

  it('reads unprefixed server messages (psql reading stdin)', () => {
    expect(parsePsqlErrors('ERROR:  relation "x" does not exist\nLINE 1: select * from x;\n')).toEqual([
      'ERROR:  relation "x" does not exist\nLINE 1: select * from x;',
    ]);
  });
});

describe('classifyRestoreErrors', () => {
  const expected = defaultExpectedErrors('aptible', 'db');

  it('lists the default expected errors of the guide', () => {
    expect(expected).toEqual([
      'role "aptible" already exists',
      'role "postgres" already exists',
      'database "db" already exists',
    ]);
  });

  it('separates the expected errors from everything else, keeping whole blocks', () => {
    const result = classifyRestoreErrors(parsePsqlErrors(RESTORE_STDERR), expected);
    expect(result.expected).toEqual([
      'psql:/work/dumps/m-1/dump.sql:18: ERROR:  role "aptible" already exists',
      'psql:/work/dumps/m-1/dump.sql:20: ERROR:  role "postgres" already exists',
      'psql:/work/dumps/m-1/dump.sql:114: ERROR:  database "db" already exists',
    ]);
    expect(result.unexpected).toEqual([
      'psql:/work/dumps/m-1/dump.sql:16: ERROR:  role "app" already exists',
      'psql:/work/dumps/m-1/dump.sql:301: ERROR:  syntax error at or near "bad"\nLINE 1: bad stuff;\n        ^',
      'psql:/work/dumps/m-1/dump.sql:305: ERROR:  duplicate key value violates unique constraint "dup_pkey"\n' +
        'DETAIL:  Key (id)=(1) already exists.\nCONTEXT:  COPY dup, line 2',
      'psql:/work/dumps/m-1/dump.sql:400: error: \\connect: connection to server at "127.0.0.1", port 55417 failed: FATAL:  database "nonexist" does not exist',
    ]);
  });

  it('matches the whole message, not a part of it', () => {
    const errors = [
      'psql:d.sql:1: ERROR:  role "aptible2" already exists',
      'psql:d.sql:2: ERROR:  role "aptible" already exists in some other way',
      'psql:d.sql:3: ERROR:  database "db2" already exists',
    ];
    expect(classifyRestoreErrors(errors, expected)).toEqual({ expected: [], unexpected: errors });
  });

  it('normalises whitespace and accepts entries written with their ERROR: prefix', () => {
    const errors = [
      'psql:d.sql:1: ERROR:  role  "aptible"   already exists',
      'psql:d.sql:2: ERROR:  extension "x" exists',
    ];
    expect(
      classifyRestoreErrors(errors, ['  role "aptible" already exists ', 'ERROR:  extension  "x" exists']),
    ).toEqual({
      expected: errors,
      unexpected: [],
    });
  });

  it('never excuses FATAL messages or connection failures, even when their text is listed', () => {
    const errors = [
      'psql:d.sql:1: FATAL:  role "aptible" already exists',
      'psql: error: connection to server at "h", port 5432 failed: FATAL:  password authentication failed for user "aptible"',
      'psql:d.sql:9: error: connection to server was lost',
    ];
    const result = classifyRestoreErrors(errors, [
      ...expected,
      'connection to server was lost',
      'password authentication failed for user "aptible"',
    ]);
    expect(result).toEqual({ expected: [], unexpected: errors });
  });

  it('is case-sensitive about the message, as PostgreSQL prints it', () => {
    expect(
      classifyRestoreErrors(['psql:d.sql:1: ERROR:  role "Aptible" already exists'], expected).unexpected,
    ).toHaveLength(1);
  });
});

// Captured from psql 15 against PostgreSQL 17.
const SYNTAX = 'psql:/w/dump.sql:8: ERROR:  syntax error at or near "SELEC"\nLINE 1: SELEC 1;\n        ^';
const UNTERMINATED =
  'psql:/w/dump.sql:3: ERROR:  unterminated quoted string at or near "\'abc"\nLINE 1: SELECT \'abc\n               ^';
const INVALID_COMMAND = 'psql:/w/dump.sql:2: error: invalid command \\N';
const MISSING_DATA = 'psql:/w/dump.sql:7: ERROR:  missing data for column "b"\nCONTEXT:  COPY t, line 2: "2"';
const EXTRA_DATA =
  'psql:/w/dump.sql:7: ERROR:  extra data after last expected column\nCONTEXT:  COPY t, line 3: "3\tx\ty"';
const BAD_COPY_VALUE =
  'psql:/w/dump.sql:7: ERROR:  invalid input syntax for type integer: "abc"\nCONTEXT:  COPY t, line 4, column a: "abc"';
const BAD_LITERAL =
  'psql:/w/dump.sql:9: ERROR:  invalid input syntax for type integer: "abc"\nLINE 1: SELECT \'abc\'::int;';
const UNKNOWN_TYPE =
  'psql:/w/dump.sql:1: ERROR:  type "no_such_type" does not exist\nLINE 1: CREATE TABLE u (a int, b no_such_type);';
const OLD_SETTING = 'psql:/w/dump.sql:40: ERROR:  unrecognized configuration parameter "force_parallel_mode"';
const CONNECT_REFUSED_BY_SERVER =
  'psql:/w/dump.sql:400: error: \\connect: connection to server at "127.0.0.1", port 55417 failed: FATAL:  database "nonexist" does not exist';

describe('isMalformedDumpError', () => {
  it('recognises what only a malformed dump produces: syntax, literals, psql commands, COPY data', () => {
    for (const e of [SYNTAX, UNTERMINATED, INVALID_COMMAND, MISSING_DATA, EXTRA_DATA, BAD_COPY_VALUE]) {
      expect([e, isMalformedDumpError(e)]).toEqual([e, true]);
    }
  });

  it("leaves what the target refuses of the source's schema to the source", () => {
    for (const e of [BAD_LITERAL, UNKNOWN_TYPE, OLD_SETTING, CONNECT_REFUSED_BY_SERVER]) {
      expect([e, isMalformedDumpError(e)]).toEqual([e, false]);
    }
  });
});

describe('isConnectionFailure', () => {
  it('recognises a dropped, refused or closed connection', () => {
    for (const e of [
      'psql:sleep.sql:1: FATAL:  terminating connection due to administrator command',
      'psql:sleep.sql:1: server closed the connection unexpectedly\n\tThis probably means the server terminated abnormally',
      'psql:sleep.sql:1: error: connection to server was lost',
      'psql: error: connection to server at "127.0.0.1", port 1 failed: Connection refused\n\tIs the server running?',
      'psql:d.sql:9: error: \\connect: connection to server at "h", port 5432 failed: FATAL:  the database system is shutting down',
      'psql:d.sql:9: error: could not connect to server: No such file or directory',
    ]) {
      expect([e, isConnectionFailure(e)]).toEqual([e, true]);
    }
  });

  it('leaves what PostgreSQL itself refuses, connections included, to the classification', () => {
    for (const e of [
      CONNECT_REFUSED_BY_SERVER,
      SYNTAX,
      UNKNOWN_TYPE,
      'psql:d.sql:1: FATAL:  role "x" already exists',
    ]) {
      expect([e, isConnectionFailure(e)]).toEqual([e, false]);
    }
  });
});

describe('unexpectedErrorsMessage', () => {
  it("tells the operator to fix the source's errors on the source", () => {
    const message = unexpectedErrorsMessage('the restore failed', [UNKNOWN_TYPE]);
    expect(message).toMatch(/^the restore failed: 1 unexpected error\(s\):\n/);
    expect(message).toContain(UNKNOWN_TYPE);
    expect(message).toContain('Fix these on the source');
    expect(message).not.toContain('malformed');
  });

  it('says a malformed dump is malformed, not to change the source, and to report it with the lines', () => {
    const message = unexpectedErrorsMessage('the restore failed', [SYNTAX, MISSING_DATA]);
    expect(message).toContain('They show that the dump file itself is malformed');
    expect(message).toContain(SYNTAX);
    expect(message).toContain(MISSING_DATA);
    expect(message).toContain('do not change the source');
    expect(message).toMatch(/Report it to pgshift's maintainers with the lines shown/);
    expect(message).not.toContain('Fix these on the source');
  });

  it('keeps the two apart when both occur', () => {
    const message = unexpectedErrorsMessage('the restore failed', [UNKNOWN_TYPE, INVALID_COMMAND]);
    const [source, malformed] = message.split('1 of them show that the dump file itself is malformed');
    expect(source).toContain(UNKNOWN_TYPE);
    expect(source).toContain('Fix these on the source');
    expect(source).not.toContain(INVALID_COMMAND);
    expect(malformed).toContain(INVALID_COMMAND);
    expect(malformed).toContain('do not change the source');
  });
});
