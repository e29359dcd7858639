import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { createPasswordFilter, DumpFilterError, HOLD_LIMIT_BYTES } from '../src/pg/password-filter';
import { SqlScanner } from '../src/pg/sql-scan';

/** Feeds `input` through a fresh filter in the given chunk sizes; returns the output and the drop count. */
async function run(input: Buffer | string, chunkSizes: number | number[] = 65536, role = 'aptible') {
  const bytes = Buffer.isBuffer(input) ? input : Buffer.from(input, 'utf8');
  const sizes = Array.isArray(chunkSizes) ? chunkSizes : [chunkSizes];
  const chunks: Buffer[] = [];
  for (let i = 0, k = 0; i < bytes.length; k++) {
    const size = sizes[k % sizes.length];
    chunks.push(bytes.subarray(i, i + size));
    i += size;
  }
  const filter = createPasswordFilter(role);
  const out = await buffer(Readable.from(chunks).pipe(filter));
  return { out, dropped: filter.droppedStatements };
}

/** Runs `input` whole, byte at a time and in a few odd chunkings; all must agree. */
async function runAllWays(input: Buffer | string, role = 'aptible') {
  const whole = await run(input, 1 << 20, role);
  for (const sizes of [1, 2, 3, 7, 64, [5, 1, 13, 2]]) {
    const other = await run(input, sizes, role);
    expect(other.out.toString('latin1')).toBe(whole.out.toString('latin1'));
    expect(other.dropped).toBe(whole.dropped);
  }
  return whole;
}

const HASH = "'SCRAM-SHA-256$4096:c2FsdA==$abc:def'";
const ADMIN_PASSWORD = `ALTER ROLE aptible WITH SUPERUSER INHERIT CREATEROLE CREATEDB LOGIN REPLICATION BYPASSRLS PASSWORD ${HASH};\n`;

/** The shape of Debian's pg_dumpall 15 output: globals, then each database after a \connect. */
function dump(roleSection: string, databases = DATABASES): string {
  return [
    '--\n-- PostgreSQL database cluster dump\n--\n\n',
    '\\restrict 9sKQ2fRZbIYtXoVwz6pLhA1dcmJ0uNeE\n\n',
    "SET default_transaction_read_only = off;\n\nSET client_encoding = 'UTF8';\n",
    'SET standard_conforming_strings = on;\n\n--\n-- Roles\n--\n\n',
    roleSection,
    '\n\\unrestrict 9sKQ2fRZbIYtXoVwz6pLhA1dcmJ0uNeE\n\n--\n-- Databases\n--\n\n',
    databases,
  ].join('');
}

// Everything after the first \connect is a database's part: it must come out byte for byte, whatever it says.
const DATABASES = [
  '\\connect template1\n\n\\restrict k2\n\nSET statement_timeout = 0;\n\\unrestrict k2\n\n',
  '--\n-- Database "db" dump\n--\n\n\\restrict k3\n',
  "CREATE DATABASE db WITH TEMPLATE = template0 ENCODING = 'UTF8' LOCALE = 'C';\n",
  '\\unrestrict k3\n\\connect db\n\\restrict k3\n\n',
  'CREATE FUNCTION public.f() RETURNS void\n    LANGUAGE sql\n    AS $$\n',
  "ALTER ROLE aptible WITH PASSWORD 'in a body';\n",
  '$$;\n\n',
  "COMMENT ON TABLE public.t IS 'multi\n",
  "ALTER ROLE aptible WITH PASSWORD ''in a comment'';\n",
  "end';\n\n",
  'COPY public."a\n',
  'ALTER ROLE aptible PASSWORD b" (x) FROM stdin;\n',
  "ALTER ROLE aptible WITH PASSWORD 'a row';\n",
  "1\tALTER ROLE aptible WITH PASSWORD 'x'\n",
  '\\.\n\n',
  "ALTER ROLE aptible WITH LOGIN PASSWORD 'not in the role section';\n",
  '\\unrestrict k3\n',
].join('');

function without(text: string, ...parts: string[]): string {
  let out = text;
  for (const part of parts) {
    const at = out.indexOf(part);
    if (at < 0) throw new Error(`test bug: ${JSON.stringify(part)} not in input`);
    out = out.slice(0, at) + out.slice(at + part.length);
  }
  return out;
}

describe('password filter', () => {
  it('removes only the admin password statement of a pg_dumpall dump', async () => {
    const roles = [
      'CREATE ROLE app;\n',
      `ALTER ROLE app WITH NOSUPERUSER INHERIT LOGIN PASSWORD ${HASH};\n`,
      'CREATE ROLE aptible;\n',
      ADMIN_PASSWORD,
      'CREATE ROLE aptible2;\n',
      `ALTER ROLE aptible2 WITH LOGIN PASSWORD ${HASH};\n`,
    ].join('');
    const input = dump(roles);
    const { out, dropped } = await runAllWays(input);
    expect(out.toString()).toBe(without(input, ADMIN_PASSWORD));
    expect(dropped).toBe(1);
  });

  it('passes a database part through untouched: function bodies, comments, COPY headers and rows', async () => {
    const input = dump('CREATE ROLE aptible;\n');
    const { out, dropped } = await runAllWays(input);
    expect(out.toString()).toBe(input);
    expect(dropped).toBe(0);
  });

  it('stops reading at the first \\connect: the rest passes without being scanned', async () => {
    // Unbalanced quotes after the \connect would swallow the rest of the dump if it were still scanned.
    const input = dump('', "\\connect db\nSELECT 'unterminated;\nALTER ROLE aptible PASSWORD 'x';\n");
    const { out, dropped } = await runAllWays(input);
    expect(out.toString()).toBe(input);
    expect(dropped).toBe(0);
  });

  it('keeps a role comment that holds the statement on a line of its own', async () => {
    const comment = "COMMENT ON ROLE aptible IS 'line1\nALTER ROLE aptible WITH PASSWORD ''zzz'';\nend';\n";
    const input = dump(`CREATE ROLE aptible;\n${ADMIN_PASSWORD}${comment}`);
    const { out, dropped } = await runAllWays(input);
    expect(out.toString()).toBe(without(input, ADMIN_PASSWORD));
    expect(out.toString()).toContain(comment);
    expect(dropped).toBe(1);
  });

  it('keeps roles whose name holds a newline, the statement text or a \\connect', async () => {
    const weird = '"we\nird ALTER ROLE aptible WITH PASSWORD \'x\';"';
    const connect = '"we\n\\connect x"';
    const roles = [
      `CREATE ROLE ${weird};\n`,
      `ALTER ROLE ${weird} WITH LOGIN PASSWORD ${HASH};\n`,
      `CREATE ROLE ${connect};\n`,
      `ALTER ROLE ${connect} WITH NOLOGIN;\n`,
      // After those, still in the role section: it must still be found.
      ADMIN_PASSWORD,
      `ALTER ROLE ${weird} SET work_mem TO '4MB';\n`,
    ].join('');
    const input = dump(roles);
    const { out, dropped } = await runAllWays(input);
    expect(out.toString()).toBe(without(input, ADMIN_PASSWORD));
    expect(dropped).toBe(1);
  });

  it('ends the role section only at a \\connect between statements, where pg_dumpall writes it', async () => {
    // psql would run a meta-command met inside a statement too, but pg_dumpall never writes one there; the
    // role section goes on until a \connect that stands on its own.
    const roles = `CREATE ROLE app\n\\connect db\n;\n${ADMIN_PASSWORD}`;
    const input = dump(roles);
    const { out, dropped } = await runAllWays(input);
    expect(out.toString()).toBe(without(input, ADMIN_PASSWORD));
    expect(dropped).toBe(1);
  });

  it('reads dollar quotes, E-strings, nested comments and line comments in the role section', async () => {
    const roles = [
      'DO $body$\nBEGIN\nALTER ROLE aptible WITH PASSWORD $$x$$;\nEND\n$body$;\n',
      "COMMENT ON ROLE app IS E'it\\'s\\nALTER ROLE aptible PASSWORD ''x'';\n';\n",
      "/* outer /* inner */\nALTER ROLE aptible PASSWORD 'x';\n*/\n",
      "-- ALTER ROLE aptible PASSWORD 'x';\n",
      "SELECT $a$ $$ $a $a$, 'it''s', $1;\n",
    ].join('');
    const input = dump(`${roles}${ADMIN_PASSWORD}`);
    const { out, dropped } = await runAllWays(input);
    expect(out.toString()).toBe(without(input, ADMIN_PASSWORD));
    expect(dropped).toBe(1);
  });

  it('tells role settings and other roles from the admin password', async () => {
    const kept = [
      "ALTER ROLE aptible SET application_name TO 'PASSWORD';\n",
      "ALTER ROLE aptible SET search_path TO 'password';\n",
      'ALTER ROLE aptible SET search_path TO password, public;\n',
      'ALTER ROLE aptible RESET password;\n',
      'ALTER ROLE aptible IN DATABASE password SET work_mem TO 1;\n',
      'ALTER ROLE aptible RENAME TO password;\n',
      'ALTER ROLE aptible RESET password_encryption;\n',
      "ALTER ROLE aptible WITH LOGIN VALID UNTIL 'PASSWORD';\n",
      'ALTER ROLE aptible WITH "password";\n',
      `ALTER ROLE aptible2 WITH PASSWORD ${HASH};\n`,
      `ALTER ROLE "Aptible" WITH PASSWORD ${HASH};\n`,
      `ALTER ROLE "aptible " PASSWORD ${HASH};\n`,
      `ALTER USER aptible2 PASSWORD ${HASH};\n`,
      `CREATE ROLE aptible PASSWORD ${HASH};\n`,
      `SELECT 'ALTER ROLE aptible PASSWORD';\n`,
    ];
    const removed = [
      `ALTER ROLE aptible WITH LOGIN PASSWORD ${HASH};\n`,
      'alter role APTIBLE password NULL;\n',
      `ALTER ROLE "aptible" WITH ENCRYPTED PASSWORD ${HASH};\n`,
      `Alter\n  Role /* c */ aptible\r\n  PASSWORD -- c\n ${HASH};\n`,
      `ALTER ROLE aptible WITH PASSWORD ${HASH} VALID UNTIL 'infinity';\n`,
    ];
    const input = dump([...kept, ...removed].join(''));
    const { out, dropped } = await runAllWays(input);
    expect(out.toString()).toBe(without(input, ...removed));
    expect(dropped).toBe(removed.length);
  });

  it('handles an admin role that needs quoting, and compares it exactly', async () => {
    const input = dump(
      [
        'ALTER ROLE "Ad""min" WITH PASSWORD \'x\';\n',
        'ALTER ROLE "Ad""min2" WITH PASSWORD \'y\';\n',
        "ALTER ROLE ad\"min WITH PASSWORD 'z';\n",
      ].join(''),
    );
    const { out, dropped } = await runAllWays(input, 'Ad"min');
    expect(out.toString()).toBe(without(input, 'ALTER ROLE "Ad""min" WITH PASSWORD \'x\';\n'));
    expect(dropped).toBe(1);
  });

  it('keeps CRLF line endings and removes a statement with its CRLF', async () => {
    const input = "SET x = 1;\r\nALTER ROLE aptible WITH PASSWORD 'x';\r\nSET y = 2;\r\n\\connect db\r\n";
    const { out, dropped } = await runAllWays(input);
    expect(out.toString()).toBe('SET x = 1;\r\nSET y = 2;\r\n\\connect db\r\n');
    expect(dropped).toBe(1);
  });

  it('removes only the line ending right after the statement, keeping what shares its line', async () => {
    const input =
      "SET a = 1; ALTER ROLE aptible PASSWORD 'x'; SET b = 2;\n" +
      "ALTER ROLE aptible PASSWORD 'y'; -- note\n" +
      "ALTER ROLE aptible PASSWORD 'z';\rSET c = 3;\n" +
      "ALTER ROLE aptible PASSWORD 'w';\n\n";
    const { out, dropped } = await runAllWays(input);
    expect(out.toString()).toBe('SET a = 1;  SET b = 2;\n -- note\n\rSET c = 3;\n\n');
    expect(dropped).toBe(4);
  });

  it('keeps invalid UTF-8 and binary bytes exactly', async () => {
    const junk = Buffer.from([0xff, 0xfe, 0xc3, 0x28, 0x00, 0xe2, 0x82, 0x0a, 0x80, 0x0d, 0x0a]);
    const input = Buffer.concat([
      Buffer.from("COMMENT ON ROLE app IS '"),
      junk,
      Buffer.from("';\n-- caf"),
      Buffer.from([0xe9, 0x0a]),
      Buffer.from('CREATE ROLE "r\xe9";\n', 'latin1'),
      Buffer.from("ALTER ROLE aptible PASSWORD '"),
      Buffer.from([0xff, 0xfe]),
      Buffer.from("';\n\\connect db\n"),
      junk,
    ]);
    const statement = input.indexOf(Buffer.from('ALTER ROLE'));
    const expected = Buffer.concat([
      input.subarray(0, statement),
      input.subarray(input.indexOf(Buffer.from('\\connect'))),
    ]);
    const { out, dropped } = await runAllWays(input);
    expect(out.equals(expected)).toBe(true);
    expect(dropped).toBe(1);
  });

  it('keeps a last line without newline, and judges a last statement without its semicolon', async () => {
    expect((await runAllWays('SET a = 1;\nSET b = 2')).out.toString()).toBe('SET a = 1;\nSET b = 2');
    expect((await runAllWays('SET a = 1;\nALTER ROLE aptible')).out.toString()).toBe(
      'SET a = 1;\nALTER ROLE aptible',
    );
    expect((await runAllWays("SET a = 1;\nCOMMENT ON ROLE x IS 'open")).out.toString()).toBe(
      "SET a = 1;\nCOMMENT ON ROLE x IS 'open",
    );
    const noSemicolon = await runAllWays("SET a = 1;\nALTER ROLE aptible WITH PASSWORD 'x'");
    expect(noSemicolon.out.toString()).toBe('SET a = 1;\n');
    expect(noSemicolon.dropped).toBe(1);
    const endsAtPassword = await runAllWays('ALTER ROLE aptible PASSWORD');
    expect(endsAtPassword.out.toString()).toBe('');
    expect(endsAtPassword.dropped).toBe(1);
    const lastLine = await runAllWays("SET a = 1;\nALTER ROLE aptible PASSWORD 'x';");
    expect(lastLine.out.toString()).toBe('SET a = 1;\n');
    expect(lastLine.dropped).toBe(1);
    const lastCR = await runAllWays("ALTER ROLE aptible PASSWORD 'x';\r");
    expect(lastCR.out.toString()).toBe('\r');
  });

  it('filters a globals-only dump (no \\connect) to its end', async () => {
    const input = `CREATE ROLE aptible;\n${ADMIN_PASSWORD}\n--\n-- PostgreSQL database cluster dump complete\n--\n\n`;
    const { out, dropped } = await runAllWays(input);
    expect(out.toString()).toBe(without(input, ADMIN_PASSWORD));
    expect(dropped).toBe(1);
  });

  it('passes empty input and blank lines through', async () => {
    expect((await run('')).out.length).toBe(0);
    expect((await runAllWays('\n\n\r\n')).out.toString()).toBe('\n\n\r\n');
  });

  it('streams what it does not hold: only a possible admin statement waits for its end', async () => {
    const filter = createPasswordFilter('aptible');
    const emitted: Buffer[] = [];
    filter.on('data', (b: Buffer) => emitted.push(b));
    const long = 'x'.repeat(1_000_000);
    filter.write(`COMMENT ON ROLE app IS '${long}`);
    filter.write(long);
    filter.write('ALTER ROLE aptible WITH LOGIN ');
    await new Promise((r) => setImmediate(r));
    expect(Buffer.concat(emitted).toString()).toBe(
      `COMMENT ON ROLE app IS '${long}${long}ALTER ROLE aptible WITH LOGIN `,
    );
    filter.write("';\nALTER ROLE aptible WITH LOGIN ");
    await new Promise((r) => setImmediate(r));
    // The second ALTER ROLE is held: a PASSWORD may still follow.
    expect(Buffer.concat(emitted).toString()).not.toContain('\nALTER ROLE');
    filter.end('CONNECTION LIMIT 3;\n');
    await new Promise((r) => filter.on('end', r));
    expect(Buffer.concat(emitted).toString()).toBe(
      `COMMENT ON ROLE app IS '${long}${long}ALTER ROLE aptible WITH LOGIN ';\nALTER ROLE aptible WITH LOGIN CONNECTION LIMIT 3;\n`,
    );
  });

  it('fails loudly rather than hold a possible admin password statement past its limit', async () => {
    const filter = createPasswordFilter('aptible');
    const failed = new Promise<Error>((resolve) => filter.on('error', resolve));
    filter.resume();
    filter.write('ALTER ROLE aptible WITH LOGIN /* ');
    const block = Buffer.alloc(1024 * 1024, 0x20);
    for (let written = 0; written <= HOLD_LIMIT_BYTES; written += block.length) filter.write(block);
    const err = await failed;
    expect(err).toBeInstanceOf(DumpFilterError);
    expect(err.name).toBe('DumpFilterError');
    expect(err.message).toMatch(/runs past 16 MiB/);
  });

  it('refuses an admin role name PostgreSQL could not have', () => {
    expect(() => createPasswordFilter('')).toThrow(/1 to 63 bytes/);
    expect(() => createPasswordFilter('a'.repeat(64))).toThrow(/1 to 63 bytes/);
  });

  it('gives the output known by construction on random role sections in random chunkings', async () => {
    let seed = 7;
    const random = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    // [statement, removed?]: every piece either survives whole or disappears whole.
    const pieces: Array<[string, boolean]> = [
      [ADMIN_PASSWORD, true],
      ["alter role APTIBLE password 'y';\r\n", true],
      ['ALTER ROLE "aptible"\nPASSWORD NULL;\n', true],
      [`ALTER ROLE aptible2 WITH PASSWORD ${HASH};\n`, false],
      ["ALTER ROLE aptible SET x TO 'PASSWORD';\n", false],
      ["COMMENT ON ROLE aptible IS 'a\nALTER ROLE aptible PASSWORD ''x'';\n';\n", false],
      ['CREATE ROLE "x\nALTER ROLE aptible PASSWORD \'y\';\n";\n', false],
      ['CREATE ROLE "\\connect db";\n', false],
      ["DO $$\nALTER ROLE aptible PASSWORD 'x';\n$$;\n", false],
      ["/* ALTER ROLE aptible PASSWORD 'x'; */\n", false],
      ["-- ALTER ROLE aptible PASSWORD 'x';\n", false],
      ['\\restrict abc\n', false],
      ['\n', false],
      ['GRANT reporting TO app GRANTED BY aptible;\n', false],
      [Buffer.from([0xff, 0x3b, 0x0a]).toString('latin1'), false],
    ];
    let totalDropped = 0;
    for (let round = 0; round < 150; round++) {
      const parts: Array<[string, boolean]> = [];
      for (let i = random(30); i >= 0; i--) parts.push(pieces[random(pieces.length)]);
      const tail = random(2) === 0 ? DATABASES : '';
      const input = Buffer.from(parts.map(([p]) => p).join('') + tail, 'latin1');
      const expected =
        parts
          .filter(([, removed]) => !removed)
          .map(([p]) => p)
          .join('') + tail;
      const sizes = Array.from({ length: 1 + random(5) }, () => 1 + random(40));
      const result = await run(input, sizes);
      expect(result.out.toString('latin1')).toBe(expected);
      expect(result.dropped).toBe(parts.filter(([, removed]) => removed).length);
      totalDropped += result.dropped;
    }
    expect(totalDropped).toBeGreaterThan(50);
  });
});

describe('SQL scanner', () => {
  /** The statements psql would send, as the scanner delimits them. */
  function statements(text: string, chunk = 1, quiet = false): string[] {
    const bytes = Buffer.from(text, 'latin1');
    const scanner = new SqlScanner();
    scanner.quiet = quiet;
    const found: string[] = [];
    // A statement begun by an operator has no `start` (the lexer knows it only a byte later): it is
    // then taken from the end of the previous one.
    let start = 0;
    for (let offset = 0; offset < bytes.length; offset += chunk) {
      const piece = bytes.subarray(offset, offset + chunk);
      for (let pos = 0; pos < piece.length;) {
        pos = scanner.scan(piece, pos);
        if (scanner.event === 'start') start = offset + pos;
        if (scanner.event === 'end') {
          found.push(text.slice(start, offset + pos).trim());
          start = offset + pos;
        }
      }
    }
    return found;
  }

  it.each([
    [1, false],
    [3, false],
    [1000, false],
    [1, true],
    [3, true],
    [1000, true],
  ])('delimits statements as psql does (chunks of %i, quiet: %s)', (chunk, quiet) => {
    const text = [
      "SELECT ';', E'\\';', $$;$$, $t$ $$; $t$, \"a;\"\"b\";",
      '/* ; /* ; */ ; */ SELECT (1;2);',
      '-- ;\nSELECT 1 \\; SELECT 2;',
      '\\restrict a;b\nSELECT $1;',
      'SELECT $a$$$a$;',
      "SELECT 'it''s';",
      "- 1 /2; $x y; $e';';",
    ].join('\n');
    expect(statements(text, chunk, quiet)).toEqual([
      "SELECT ';', E'\\';', $$;$$, $t$ $$; $t$, \"a;\"\"b\";",
      'SELECT (1;2);',
      'SELECT 1 \\; SELECT 2;',
      'SELECT $1;',
      'SELECT $a$$$a$;',
      "SELECT 'it''s';",
      '- 1 /2;',
      '$x y;',
      "$e';';",
    ]);
  });

  it('reports words lowercased, quoted identifiers exactly and meta-command names', () => {
    const scanner = new SqlScanner();
    const seen: string[] = [];
    const input = Buffer.from('\\connect db\nALTER "Ro""le" $x$ab$x$ e\'\\\'\' Wo$rd;');
    for (let pos = 0; pos < input.length;) {
      pos = scanner.scan(input, pos);
      if (['word', 'ident', 'meta'].includes(scanner.event)) seen.push(`${scanner.event}:${scanner.text}`);
      else if (scanner.event !== 'more') seen.push(scanner.event);
    }
    expect(seen).toEqual([
      'meta:connect',
      'start',
      'word:alter',
      'ident:Ro"le',
      'token',
      'token',
      'word:wo$rd',
      'end',
    ]);
  });
});
