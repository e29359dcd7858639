// The password filter on real pg_dumpall output: a PostgreSQL 14 source holding everything that defeats a
// line filter (a function body, multi-line literals and a table name whose lines read like the admin's
// password statement, COPY rows that do too, a role comment and role names with newlines), dumped by the
// real dumpAll and restored into PostgreSQL 17.
import { execFile } from 'node:child_process';
import { access, chmod, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { DatabaseConnection } from '../src/platform/platform';
import type { LocalPlatform } from '../src/platform/local';
import { findClientTools } from '../src/pg/client-tools';
import { type PgTarget, libpqArgs, libpqEnv, withClient } from '../src/pg/connection';
import { dumpAll } from '../src/pg/dump';
import { DumpFilterError } from '../src/pg/password-filter';
import { restoreDump } from '../src/pg/restore';
import { defaultExpectedErrors } from '../src/pg/restore-errors';
import { startClusterPair } from './helpers/cluster-pair';

const ENV = 'dump-filter-real';
const ADMIN = 'aptible';
const LOOKALIKE = "ALTER ROLE aptible WITH PASSWORD 'looks-like-it';";
const ROLE_COMMENT = `role comment\n${LOOKALIKE}\nend`;
const ROLE_NAME = `odd\n${LOOKALIKE}`;
const CONNECT_ROLE = 'odd\n\\connect db';
const TABLE = `notes\n${LOOKALIKE}`;
const FUNCTION_BODY = `\n${LOOKALIKE}\n`;
const TABLE_COMMENT = `a comment whose last line closes it\n${LOOKALIKE}`;

let home: string;
let work: string;
let platform: LocalPlatform;
let source: DatabaseConnection;
let target: DatabaseConnection;

async function sql(t: PgTarget, db: string, text: string, values: unknown[] = []): Promise<void> {
  await withClient(t, db, async (c) => {
    await c.query(text, values);
  });
}

async function rows<T>(t: PgTarget, db: string, text: string, values: unknown[] = []): Promise<T[]> {
  return withClient(t, db, async (c) => (await c.query(text, values)).rows as T[]);
}

function ident(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

function literal(text: string): string {
  return `'${text.replace(/'/g, "''")}'`;
}

async function populateSource(s: PgTarget): Promise<void> {
  await sql(
    s,
    'postgres',
    `CREATE ROLE ${ident(ROLE_NAME)} LOGIN PASSWORD 'odd-secret';
     CREATE ROLE ${ident(CONNECT_ROLE)} NOLOGIN;
     CREATE ROLE aptible2 LOGIN PASSWORD 'another-secret';
     COMMENT ON ROLE aptible IS ${literal(ROLE_COMMENT)};
     ALTER ROLE aptible SET application_name TO 'PASSWORD';`,
  );
  await sql(
    s,
    'db',
    `CREATE FUNCTION lookalike() RETURNS void LANGUAGE sql AS $body$${FUNCTION_BODY}$body$;
     COMMENT ON FUNCTION lookalike() IS ${literal(TABLE_COMMENT)};
     CREATE TABLE ${ident(TABLE)} (id int, entry text);
     INSERT INTO ${ident(TABLE)} VALUES (1, ${literal(LOOKALIKE)}), (2, 'plain');
     COMMENT ON TABLE ${ident(TABLE)} IS ${literal(TABLE_COMMENT)};
     CREATE TABLE rows_alike (entry text);
     INSERT INTO rows_alike VALUES (${literal(LOOKALIKE)});`,
  );
}

/** pg_dumpall itself, as dumpAll runs it, without the filter. */
async function rawDumpAll(s: PgTarget, extra: string[] = []): Promise<Buffer> {
  const tools = await findClientTools();
  const { stdout } = await promisify(execFile)(
    tools.pgDumpall,
    [...libpqArgs(s), '-l', s.database, ...extra],
    {
      env: libpqEnv(s),
      encoding: 'buffer',
      maxBuffer: 256 * 1024 * 1024,
    },
  );
  return stdout;
}

/** pg_dumpall 15.14+ writes a random key on each \restrict and \unrestrict line; the rest is repeatable. */
function normalizeRestrictKeys(dump: Buffer): string {
  return dump.toString('latin1').replace(/^(\\(?:un)?restrict) \S+$/gm, '$1 KEY');
}

/** The raw dump without the line of the admin's password statement (found by the admin's own hash). */
async function rawWithoutAdminPassword(raw: string): Promise<string> {
  const [{ rolpassword }] = await rows<{ rolpassword: string }>(
    source,
    'postgres',
    'SELECT rolpassword FROM pg_authid WHERE rolname = $1',
    [ADMIN],
  );
  const hashAt = raw.indexOf(`PASSWORD '${rolpassword}';\n`);
  expect(hashAt).toBeGreaterThan(0);
  expect(raw.split(rolpassword)).toHaveLength(2);
  const lineStart = raw.lastIndexOf('\n', hashAt) + 1;
  const lineEnd = raw.indexOf('\n', hashAt) + 1;
  expect(raw.slice(lineStart, lineEnd)).toMatch(/^ALTER ROLE aptible WITH [A-Z ]+ PASSWORD 'SCRAM-SHA-256\$/);
  return raw.slice(0, lineStart) + raw.slice(lineEnd);
}

beforeAll(async () => {
  home = await mkdtemp(join(tmpdir(), 'pgshift-dump-filter-'));
  work = await mkdtemp(join(tmpdir(), 'pgshift-dump-filter-work-'));
  ({ platform, source, target } = await startClusterPair(home, {
    environment: ENV,
    createdBy: 'dump-filter-test',
  }));
  await populateSource(source);
});

afterAll(async () => {
  await source?.close();
  await target?.close();
  await platform?.destroy();
  if (work) await rm(work, { recursive: true, force: true });
});

describe('the dump filter on real pg_dumpall output', () => {
  const dumpPath = () => join(work, 'dump.sql');

  it('removes exactly the admin password statement and keeps every other byte', async () => {
    const result = await dumpAll(source, dumpPath(), { adminRole: ADMIN });
    // Nothing writes to the source in between: both dumps read the same state.
    const raw = normalizeRestrictKeys(await rawDumpAll(source));
    const filtered = normalizeRestrictKeys(await readFile(dumpPath()));

    expect(result.droppedStatements).toBe(1);
    expect(filtered).toBe(await rawWithoutAdminPassword(raw));
    // The guide's grep would also have cut lines of a function body, of literals, of role and table names,
    // of a COPY header and of COPY data: all of them are still there.
    const grep = (text: string) =>
      text.split('\n').filter((line) => /ALTER ROLE aptible .*PASSWORD/i.test(line));
    expect(grep(raw).length).toBeGreaterThanOrEqual(10);
    expect(grep(filtered)).toHaveLength(grep(raw).length - 1);
    expect(filtered).toContain(`\n${LOOKALIKE}" (id, entry) FROM stdin;\n1\t${LOOKALIKE}\n`);
  });

  it('does the same on a schema-only dump', async () => {
    const path = join(work, 'schema.sql');
    const result = await dumpAll(source, path, { adminRole: ADMIN, schemaOnly: true });
    const raw = normalizeRestrictKeys(await rawDumpAll(source, ['--schema-only']));
    expect(result.droppedStatements).toBe(1);
    expect(normalizeRestrictKeys(await readFile(path))).toBe(await rawWithoutAdminPassword(raw));
  });

  it('restores into PostgreSQL 17 with the target admin password unchanged and every object whole', async () => {
    const result = await restoreDump(target, dumpPath(), { expected: defaultExpectedErrors(ADMIN, 'db') });
    expect(result.unexpected).toEqual([]);

    // The source's admin password hash was not restored over the target's (which still logs in below).
    const hash = async (t: PgTarget) =>
      rows(t, 'postgres', 'SELECT rolpassword FROM pg_authid WHERE rolname = $1', [ADMIN]);
    expect(await hash(target)).not.toEqual(await hash(source));
    const [{ src }] = await rows<{ src: string }>(
      target,
      'db',
      "SELECT prosrc AS src FROM pg_proc WHERE proname = 'lookalike'",
    );
    expect(src).toBe(FUNCTION_BODY);
    expect(await rows(target, 'db', `SELECT id, entry FROM ${ident(TABLE)} ORDER BY id`)).toEqual([
      { id: 1, entry: LOOKALIKE },
      { id: 2, entry: 'plain' },
    ]);
    expect(await rows(target, 'db', 'SELECT entry FROM rows_alike')).toEqual([{ entry: LOOKALIKE }]);
    expect(await rows(target, 'db', "SELECT obj_description('lookalike'::regproc, 'pg_proc') AS d")).toEqual([
      { d: TABLE_COMMENT },
    ]);
    expect(
      await rows(
        target,
        'postgres',
        "SELECT shobj_description(oid, 'pg_authid') AS d FROM pg_roles WHERE rolname = $1",
        [ADMIN],
      ),
    ).toEqual([{ d: ROLE_COMMENT }]);
    expect(
      (
        await rows<{ rolname: string }>(
          target,
          'postgres',
          'SELECT rolname FROM pg_roles WHERE rolname LIKE $1',
          ['odd%'],
        )
      )
        .map((r) => r.rolname)
        .sort(),
    ).toEqual([CONNECT_ROLE, ROLE_NAME].sort());
  });

  it("fails the dump with the filter's own error when it cannot tell a statement apart", async () => {
    // No real pg_dumpall writes an ALTER ROLE for the admin that runs 20 MB before its PASSWORD, so a
    // stand-in writes one; psql and pg_dump are the real ones.
    const tools = await findClientTools();
    const bin = await mkdtemp(join(tmpdir(), 'pgshift-fake-dumpall-'));
    await writeFile(
      join(bin, 'pg_dumpall'),
      [
        '#!/bin/sh',
        `if [ "$1" = --version ]; then echo 'pg_dumpall (PostgreSQL) ${tools.version}'; exit 0; fi`,
        "printf 'CREATE ROLE aptible;\\nALTER ROLE aptible WITH LOGIN /* '",
        "head -c 20000000 /dev/zero | tr '\\0' ' '",
        "printf '*/ PASSWORD NULL;\\n'",
      ].join('\n'),
    );
    await chmod(join(bin, 'pg_dumpall'), 0o755);
    await symlink(tools.psql, join(bin, 'psql'));
    await symlink(tools.pgDump, join(bin, 'pg_dump'));
    const saved = process.env.PGSHIFT_PG_BIN;
    process.env.PGSHIFT_PG_BIN = bin;
    const path = join(work, 'refused', 'dump.sql');
    try {
      const err = await dumpAll(source, path, { adminRole: ADMIN }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(DumpFilterError);
      expect((err as Error).message).toMatch(/runs past 16 MiB without showing whether it sets the password/);
      expect(
        await access(`${path}.partial`).then(
          () => true,
          () => false,
        ),
      ).toBe(false);
    } finally {
      if (saved === undefined) delete process.env.PGSHIFT_PG_BIN;
      else process.env.PGSHIFT_PG_BIN = saved;
      await rm(bin, { recursive: true, force: true });
    }
  });
});
