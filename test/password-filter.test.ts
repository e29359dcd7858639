import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { createPasswordFilter, isAdminPasswordLine } from '../src/pg/password-filter';

/** Feeds `input` through a fresh filter in the given chunk sizes; returns the output and the drop count. */
async function run(input: Buffer | string, chunkSize = 65536, role = 'aptible') {
  const bytes = Buffer.isBuffer(input) ? input : Buffer.from(input, 'utf8');
  const chunks: Buffer[] = [];
  for (let i = 0; i < bytes.length; i += chunkSize) chunks.push(bytes.subarray(i, i + chunkSize));
  const filter = createPasswordFilter(role);
  const out = await buffer(Readable.from(chunks).pipe(filter));
  return { out, dropped: filter.droppedStatements };
}

const PASSWORD_LINE =
  "ALTER ROLE aptible WITH SUPERUSER INHERIT CREATEROLE CREATEDB LOGIN REPLICATION BYPASSRLS PASSWORD 'SCRAM-SHA-256$4096:c2FsdA==$abc:def';\n";

// A realistic pg_dumpall excerpt (recent versions open and close each script with \restrict/\unrestrict).
const DUMP = [
  '\\restrict 9sKQ2fRZbIYtXoVwz6pLhA1dcmJ0uNeE\n',
  '--\n',
  '-- PostgreSQL database cluster dump\n',
  '--\n',
  'SET default_transaction_read_only = off;\n',
  'CREATE ROLE aptible;\n',
  PASSWORD_LINE,
  'CREATE ROLE aptible2;\n',
  "ALTER ROLE aptible2 WITH NOSUPERUSER INHERIT LOGIN PASSWORD 'SCRAM-SHA-256$4096:eHl6$ghi:jkl';\n",
  'CREATE ROLE app;\n',
  "ALTER ROLE app WITH LOGIN PASSWORD 'md5c4ca4238a0b923820dcc509a6f75849b';\n",
  "ALTER ROLE aptible SET password_encryption TO 'scram-sha-256';\n",
  '\\unrestrict 9sKQ2fRZbIYtXoVwz6pLhA1dcmJ0uNeE\n',
  '\\connect db\n',
  'COPY public.notes (id, body) FROM stdin;\n',
  "1\tALTER ROLE aptible WITH PASSWORD 'hunter2'\n",
  "ALTER ROLE aptible WITH LOGIN PASSWORD 'in a single-column row'\n",
  '\\.\n',
  "ALTER ROLE aptible WITH LOGIN PASSWORD 'after the copy block';\n",
].join('');

function expectedWithout(text: string, ...lines: string[]): string {
  let out = text;
  for (const line of lines) {
    const at = out.indexOf(line);
    if (at < 0) throw new Error(`test bug: ${line} not in input`);
    out = out.slice(0, at) + out.slice(at + line.length);
  }
  return out;
}

describe('password filter', () => {
  const wanted = expectedWithout(
    DUMP,
    PASSWORD_LINE,
    "ALTER ROLE aptible WITH LOGIN PASSWORD 'after the copy block';\n",
  );

  it('drops the admin password lines outside COPY data and keeps every other byte', async () => {
    const { out, dropped } = await run(DUMP);
    expect(out.toString('utf8')).toBe(wanted);
    expect(dropped).toBe(2);
  });

  it.each([1, 2, 3, 7, 11, 12, 13, 64])('gives the same result fed %i byte(s) at a time', async (size) => {
    const { out, dropped } = await run(DUMP, size);
    expect(out.toString('utf8')).toBe(wanted);
    expect(dropped).toBe(2);
  });

  it('keeps table rows that contain the admin password text (the guide grep would lose them)', async () => {
    const { out } = await run(DUMP, 5);
    expect(out.toString()).toContain("1\tALTER ROLE aptible WITH PASSWORD 'hunter2'\n");
    expect(out.toString()).toContain("ALTER ROLE aptible WITH LOGIN PASSWORD 'in a single-column row'\n");
  });

  it('keeps roles whose name only starts with the admin role, and role settings', async () => {
    const { out } = await run(DUMP);
    expect(out.toString()).toContain("ALTER ROLE aptible2 WITH NOSUPERUSER INHERIT LOGIN PASSWORD 'SCRAM");
    expect(out.toString()).toContain("ALTER ROLE aptible SET password_encryption TO 'scram-sha-256';\n");
    expect(out.toString()).toContain("ALTER ROLE app WITH LOGIN PASSWORD 'md5");
  });

  it('keeps \\restrict and \\unrestrict lines byte for byte', async () => {
    const { out } = await run(DUMP, 1);
    expect(out.toString()).toMatch(/^\\restrict 9sKQ2fRZbIYtXoVwz6pLhA1dcmJ0uNeE\n/);
    expect(out.toString()).toContain('\\unrestrict 9sKQ2fRZbIYtXoVwz6pLhA1dcmJ0uNeE\n');
  });

  it('matches case-insensitively and accepts the quoted role name', async () => {
    const input = [
      "alter role APTIBLE with password 'x';\n",
      'ALTER ROLE "aptible" WITH LOGIN PASSWORD \'y\';\n',
      "Alter Role aptible password 'z';\n",
      'ALTER ROLE "Aptible" WITH LOGIN PASSWORD \'another role\';\n',
      'ALTER ROLE aptible WITH SUPERUSER;\n',
    ].join('');
    const { out, dropped } = await run(input, 3);
    expect(dropped).toBe(3);
    expect(out.toString()).toBe(
      'ALTER ROLE "Aptible" WITH LOGIN PASSWORD \'another role\';\nALTER ROLE aptible WITH SUPERUSER;\n',
    );
  });

  it('handles admin roles that need quoting', async () => {
    const input = 'ALTER ROLE "Ad""min" WITH PASSWORD \'x\';\nALTER ROLE "Ad""min2" WITH PASSWORD \'y\';\n';
    const { out, dropped } = await run(input, 1, 'Ad"min');
    expect(dropped).toBe(1);
    expect(out.toString()).toBe('ALTER ROLE "Ad""min2" WITH PASSWORD \'y\';\n');
  });

  it('keeps CRLF line endings and drops CRLF password lines', async () => {
    const input = "SELECT 1;\r\nALTER ROLE aptible WITH PASSWORD 'x';\r\nSELECT 2;\r\n";
    for (const size of [1, 4, 100]) {
      const { out, dropped } = await run(input, size);
      expect(out.toString()).toBe('SELECT 1;\r\nSELECT 2;\r\n');
      expect(dropped).toBe(1);
    }
  });

  it('recognises COPY blocks with CRLF endings', async () => {
    const input =
      'COPY public.t (a) FROM stdin;\r\n' +
      "ALTER ROLE aptible WITH PASSWORD 'data';\r\n" +
      '\\.\r\n' +
      "ALTER ROLE aptible WITH PASSWORD 'sql';\r\n";
    const { out, dropped } = await run(input, 2);
    expect(dropped).toBe(1);
    expect(out.toString()).toBe(
      "COPY public.t (a) FROM stdin;\r\nALTER ROLE aptible WITH PASSWORD 'data';\r\n\\.\r\n",
    );
  });

  it('keeps invalid UTF-8 and binary bytes exactly', async () => {
    const junk = Buffer.from([0xff, 0xfe, 0xc3, 0x28, 0x00, 0xe2, 0x82, 0x0a, 0x80, 0x0d, 0x0a]);
    const input = Buffer.concat([
      Buffer.from('COPY public.b (x) FROM stdin;\n'),
      junk,
      Buffer.from('\\.\n-- caf'),
      Buffer.from([0xe9, 0x0a]),
      Buffer.from("ALTER ROLE aptible PASSWORD '"),
      Buffer.from([0xff, 0xfe]),
      Buffer.from("';\n"),
    ]);
    const expected = input.subarray(0, input.indexOf(Buffer.from('ALTER ROLE')));
    for (const size of [1, 3, 1000]) {
      const { out, dropped } = await run(input, size);
      expect(out.equals(expected)).toBe(true);
      expect(dropped).toBe(1);
    }
  });

  it('keeps a final line without newline, and drops one that is a password line', async () => {
    expect((await run('SELECT 1;\nSELECT 2;', 1)).out.toString()).toBe('SELECT 1;\nSELECT 2;');
    expect((await run('SELECT 1;\nALTER', 1)).out.toString()).toBe('SELECT 1;\nALTER');
    const last = await run("SELECT 1;\nALTER ROLE aptible WITH PASSWORD 'x';", 4);
    expect(last.out.toString()).toBe('SELECT 1;\n');
    expect(last.dropped).toBe(1);
  });

  it('passes empty input and empty lines through', async () => {
    expect((await run('')).out.length).toBe(0);
    expect((await run('\n\n\r\n', 1)).out.toString()).toBe('\n\n\r\n');
  });

  it('does not drop indented text or text in the middle of a line (function bodies)', async () => {
    const input =
      'CREATE FUNCTION f() RETURNS void LANGUAGE plpgsql AS $$\n' +
      "  BEGIN EXECUTE 'ALTER ROLE aptible WITH PASSWORD ''x'''; END\n" +
      '$$;\n' +
      "SELECT 'ALTER ROLE aptible PASSWORD';\n";
    const { out, dropped } = await run(input, 1);
    expect(out.toString()).toBe(input);
    expect(dropped).toBe(0);
  });

  it('resumes filtering after a \\connect even if a COPY block was never closed', async () => {
    const input =
      'COPY public.t (a) FROM stdin;\n' + '\\connect other\n' + "ALTER ROLE aptible WITH PASSWORD 'x';\n";
    const { out, dropped } = await run(input, 1);
    expect(dropped).toBe(1);
    expect(out.toString()).toBe('COPY public.t (a) FROM stdin;\n\\connect other\n');
  });

  it('does not treat an escaped backslash-dot row as the end of COPY data', async () => {
    // A value `\.` is written as `\\.` in COPY text format; only a bare `\.` ends the block.
    const input =
      'COPY public.t (a) FROM stdin;\n' +
      '\\\\.\n' +
      "ALTER ROLE aptible WITH PASSWORD 'still data';\n" +
      '\\.\n';
    const { out, dropped } = await run(input, 1);
    expect(dropped).toBe(0);
    expect(out.toString()).toBe(input);
  });

  it('streams long lines as they come instead of holding them until their end', async () => {
    const filter = createPasswordFilter('aptible');
    const emitted: Buffer[] = [];
    filter.on('data', (b: Buffer) => emitted.push(b));
    const long = 'x'.repeat(1_000_000);
    const parts = [`COPY public.t (a) FROM stdin;\n${long}`, long, `\n\\.\nINSERT INTO t VALUES ('${long}`];
    for (const part of parts) filter.write(part);
    await new Promise((r) => setImmediate(r));
    // Nothing is held: no line so far can be an admin password line.
    expect(Buffer.concat(emitted).length).toBe(Buffer.byteLength(parts.join('')));
    filter.end("');\n");
    await new Promise((r) => filter.on('end', r));
    expect(Buffer.concat(emitted).toString()).toBe(
      `COPY public.t (a) FROM stdin;\n${long}${long}\n\\.\nINSERT INTO t VALUES ('${long}');\n`,
    );
  });

  it('agrees with a line-by-line reference on random dumps fed in random chunk sizes', async () => {
    let seed = 42;
    const random = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    const vocabulary = [
      "ALTER ROLE aptible WITH LOGIN PASSWORD 'x'",
      "alter role APTIBLE password 'y'",
      "ALTER ROLE aptible2 WITH PASSWORD 'z'",
      'ALTER ROLE aptible SET search_path TO public',
      'ALTER ROLE',
      'ALTER ROLE aptible',
      'COPY public.t (a) FROM stdin;',
      'COPY "odd ""name""" (a) FROM stdin;',
      'COPY public.t TO stdout;',
      '\\.',
      '\\\\.',
      '\\connect db',
      '\\restrict abc',
      '1\tALTER ROLE aptible PASSWORD',
      '',
      'SELECT 1;',
      'x'.repeat(70),
    ];
    const reference = (input: Buffer): Buffer => {
      const text = input.toString('latin1');
      const lines = text.match(/[^\n]*\n|[^\n]+$/g) ?? [];
      let inCopy = false;
      let out = '';
      for (const line of lines) {
        const content = line.replace(/\n$/, '').replace(/\r$/, '');
        if (inCopy) {
          out += line;
          if (content === '\\.' || line.startsWith('\\connect ')) inCopy = false;
        } else if (/^ALTER ROLE /i.test(line) && isAdminPasswordLine(line, 'aptible')) {
          continue;
        } else {
          out += line;
          if (line.startsWith('COPY ') && content.endsWith(' FROM stdin;')) inCopy = true;
        }
      }
      return Buffer.from(out, 'latin1');
    };
    let dropped = 0;
    for (let round = 0; round < 200; round++) {
      const parts: Buffer[] = [];
      const count = 1 + random(40);
      for (let i = 0; i < count; i++) {
        parts.push(Buffer.from(vocabulary[random(vocabulary.length)], 'latin1'));
        if (random(10) === 0) parts.push(Buffer.from([0x80 + random(128)]));
        if (i < count - 1 || random(2) === 0) parts.push(Buffer.from(random(4) === 0 ? '\r\n' : '\n'));
      }
      const input = Buffer.concat(parts);
      const result = await run(input, 1 + random(50));
      expect(result.out.toString('latin1')).toBe(reference(input).toString('latin1'));
      dropped += result.dropped;
    }
    expect(dropped).toBeGreaterThan(50);
  });

  it('recognises the password line shape', () => {
    expect(isAdminPasswordLine("ALTER ROLE aptible WITH LOGIN PASSWORD 'x';", 'aptible')).toBe(true);
    expect(isAdminPasswordLine('ALTER ROLE aptible WITH LOGIN PASSWORD NULL;', 'aptible')).toBe(true);
    expect(isAdminPasswordLine("ALTER ROLE aptible2 WITH PASSWORD 'x';", 'aptible')).toBe(false);
    expect(isAdminPasswordLine("ALTER ROLE aptible IN DATABASE db SET x TO 'password';", 'aptible')).toBe(
      false,
    );
    expect(isAdminPasswordLine('ALTER ROLE aptible WITH LOGIN;', 'aptible')).toBe(false);
    expect(isAdminPasswordLine('ALTER ROLE aptible RENAME TO password;', 'aptible')).toBe(false);
  });
});
