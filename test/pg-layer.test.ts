// The PostgreSQL layer against real clusters: a PostgreSQL 14 source and a PostgreSQL 17 target created by
// the local platform, dumped and restored with the real pg_dumpall and psql.
import { carryDatabaseProperties } from '../src/pg/database-properties';
import { access, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import {
  DumpMissingError,
  NON_RETRYABLE_ERRORS,
  PreflightError,
  RestoreInterruptedError,
} from '../src/errors';
import type { DatabaseConnection } from '../src/platform/platform';
import type { LocalPlatform } from '../src/platform/local';
import { assertCanDump, findClientTools } from '../src/pg/client-tools';
import { type PgTarget, openClient, withClient } from '../src/pg/connection';
import { dumpAll, fileSha256 } from '../src/pg/dump';
import { listDatabases, serverMajorVersion, totalDatabaseSize } from '../src/pg/inspect';
import { resetTarget } from '../src/pg/reset';
import { restoreDump } from '../src/pg/restore';
import { defaultExpectedErrors, errorMessageText } from '../src/pg/restore-errors';
import { compareServers } from '../src/pg/verify';
import { vacuumAnalyzeAll } from '../src/pg/vacuum';
import { startClusterPair } from './helpers/cluster-pair';

const ENV = 'pg-layer';
const ADMIN = 'aptible';
const APP_PASSWORD = 'app-secret-pw-1';
const EXPECTED = defaultExpectedErrors(ADMIN, 'db');

let home: string;
let work: string;
let platform: LocalPlatform;
let source: DatabaseConnection;
let target: DatabaseConnection;
let dumpPath: string;
let dumpSha: string;

async function sql(t: PgTarget, db: string, text: string): Promise<void> {
  await withClient(t, db, async (c) => {
    await c.query(text);
  });
}

async function scalar<T = string>(t: PgTarget, db: string, text: string): Promise<T> {
  return withClient(t, db, async (c) => Object.values((await c.query(text)).rows[0])[0] as T);
}

async function canLogIn(t: PgTarget): Promise<boolean> {
  try {
    const c = await openClient(t, 'postgres');
    await c.end();
    return true;
  } catch {
    return false;
  }
}

async function waitFor(check: () => Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return true;
    await new Promise((r) => setTimeout(r, 200));
  }
  return check();
}

/** Sessions of other clients (pg_dump, psql) on a server, whatever database they are in. */
async function otherSessions(t: PgTarget): Promise<number> {
  return scalar<number>(
    t,
    'postgres',
    "SELECT count(*)::int FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()",
  );
}

/** Processes whose command line mentions `text` (to find a psql, or see that a killed one is really gone). */
async function pidsMentioning(text: string): Promise<number[]> {
  const pids: number[] = [];
  for (const pid of await readdir('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
    if (cmdline.includes(text)) pids.push(Number(pid));
  }
  return pids;
}

async function processesMentioning(text: string): Promise<number> {
  return (await pidsMentioning(text)).length;
}

async function exists(path: string): Promise<boolean> {
  return access(path).then(
    () => true,
    () => false,
  );
}

async function populateSource(s: PgTarget): Promise<void> {
  await sql(
    s,
    'postgres',
    `CREATE ROLE app LOGIN PASSWORD '${APP_PASSWORD}';
     CREATE ROLE aptible2 LOGIN PASSWORD 'another-secret';
     CREATE ROLE reporting NOLOGIN;
     GRANT reporting TO app;`,
  );
  // CREATE DATABASE cannot share a (multi-statement, hence transactional) query with anything.
  await sql(s, 'postgres', 'CREATE DATABASE shop OWNER app');
  await sql(s, 'postgres', 'CREATE DATABASE analytics');
  // Text that looks like the admin password line, as a row of a one-column table: the line in the
  // dump's COPY data starts exactly like the statement the guide's grep removes.
  await sql(
    s,
    'db',
    `CREATE TABLE notes (entry text);
     INSERT INTO notes VALUES ('ALTER ROLE aptible WITH LOGIN PASSWORD ''from-a-row'';'), ('plain');`,
  );
  await sql(
    s,
    'shop',
    `SET ROLE app;
     CREATE TABLE orders (id bigserial PRIMARY KEY, doc jsonb NOT NULL, note text);
     CREATE INDEX orders_doc ON orders USING gin (doc);
     CREATE INDEX orders_customer ON orders ((doc->>'customer'));
     INSERT INTO orders (doc, note)
       SELECT jsonb_build_object('customer', 'c' || (g % 17), 'total', g * 1.5, 'tags', jsonb_build_array('a', g)),
              CASE WHEN g % 100 = 0 THEN 'ALTER ROLE aptible PASSWORD ''in-a-column''' END
         FROM generate_series(1, 500) g;
     CREATE SEQUENCE invoice_no START 1000;
     SELECT nextval('invoice_no') FROM generate_series(1, 7);
     CREATE SEQUENCE never_used;
     CREATE TABLE "Mixed Case ""Quoted"" t" ("Col A" int, "b c" text);
     INSERT INTO "Mixed Case ""Quoted"" t" VALUES (1, 'x'), (2, NULL), (3, E'tab\\there');
     CREATE TABLE measurements (id int, at date, v double precision) PARTITION BY RANGE (at);
     CREATE TABLE measurements_2024 PARTITION OF measurements FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
     CREATE TABLE measurements_2025 PARTITION OF measurements FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
     INSERT INTO measurements SELECT g, date '2024-06-01' + g, g / 3.0 FROM generate_series(1, 400) g;
     RESET ROLE;
     CREATE TABLE big (id int PRIMARY KEY, payload text);
     INSERT INTO big SELECT g, repeat(md5(g::text), 4) FROM generate_series(1, 150000) g;
     GRANT SELECT ON orders TO reporting;`,
  );
  await sql(
    s,
    'analytics',
    `CREATE SCHEMA "Reports";
     CREATE TABLE "Reports"."daily totals" (day date PRIMARY KEY, total numeric(12,2), at timestamptz);
     INSERT INTO "Reports"."daily totals" VALUES ('2024-01-01', 10.5, '2024-01-01 10:00+02'), ('2024-01-02', 11, NULL);`,
  );
  // Objects a source keeps in template1 are restored into the target's template1; a retried restore must
  // not trip over them.
  await sql(s, 'template1', 'CREATE TABLE tpl_marker (x int); INSERT INTO tpl_marker VALUES (1);');
}

beforeAll(async () => {
  home = await mkdtemp(join(tmpdir(), 'pgshift-pg-layer-'));
  work = await mkdtemp(join(tmpdir(), 'pgshift-pg-layer-work-'));
  dumpPath = join(work, 'dumps', 'dump.sql');
  ({ platform, source, target } = await startClusterPair(home, {
    environment: ENV,
    createdBy: 'pg-layer-test',
  }));
  await populateSource(source);
});

afterAll(async () => {
  await source?.close();
  await target?.close();
  // Stops the clusters and removes them with the home.
  await platform?.destroy();
  if (work) await rm(work, { recursive: true, force: true });
});

describe('client tools and inspection', () => {
  it('finds pg_dumpall, pg_dump and psql and their major version', async () => {
    const tools = await findClientTools();
    expect(tools.version).toBeGreaterThanOrEqual(14);
    expect(tools.pgDumpall).toMatch(/pg_dumpall$/);
    expect(tools.psql).toMatch(/psql$/);
    expect(tools.pgDump).toMatch(/pg_dump$/);
  });

  it('tells the operator to install the client tools when they are missing', async () => {
    const empty = await mkdtemp(join(tmpdir(), 'pgshift-no-tools-'));
    const saved = process.env.PGSHIFT_PG_BIN;
    process.env.PGSHIFT_PG_BIN = empty;
    try {
      const err = await findClientTools().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(PreflightError);
      expect((err as Error).message).toMatch(/pg_dumpall, psql, pg_dump not found in PGSHIFT_PG_BIN/);
      expect((err as Error).message).toMatch(/postgresql-client/);
    } finally {
      if (saved === undefined) delete process.env.PGSHIFT_PG_BIN;
      else process.env.PGSHIFT_PG_BIN = saved;
      await rm(empty, { recursive: true, force: true });
    }
  });

  it('refuses a client older than the server it must dump', () => {
    expect(() => assertCanDump(15, 14)).not.toThrow();
    expect(() => assertCanDump(15, 15)).not.toThrow();
    expect(() => assertCanDump(15, 17)).toThrow(PreflightError);
    expect(() => assertCanDump(15, 17)).toThrow(/postgresql-client-17/);
    expect(() => assertCanDump(16, 9.1)).toThrow(PreflightError);
  });

  it('reads the versions, databases and size of both servers', async () => {
    expect(await serverMajorVersion(source)).toBe(14);
    expect(await serverMajorVersion(target)).toBe(17);
    expect(await listDatabases(source)).toEqual(['analytics', 'db', 'postgres', 'shop']);
    expect(await listDatabases(target)).toEqual(['db', 'postgres']);
    expect(await totalDatabaseSize(source)).toBeGreaterThan(20 * 1024 * 1024);
  });
});

describe('dump', () => {
  it('dumps the source without the admin password line, keeping data that looks like it', async () => {
    const progress: number[] = [];
    const result = await dumpAll(source, dumpPath, { adminRole: ADMIN, onProgress: (b) => progress.push(b) });
    dumpSha = result.sha256;

    const text = await readFile(dumpPath, 'latin1');
    expect(result.bytes).toBe(Buffer.byteLength(text, 'latin1'));
    expect(result.sha256).toBe(await fileSha256(dumpPath));
    expect(result.droppedStatements).toBe(1);
    expect(progress.at(-1)).toBe(result.bytes);
    expect((await stat(dumpPath)).mode & 0o777).toBe(0o600);
    expect(await exists(`${dumpPath}.partial`)).toBe(false);

    expect(text).not.toMatch(/^ALTER ROLE aptible WITH .*PASSWORD 'SCRAM-SHA-256/m);
    expect(text).toMatch(/^CREATE ROLE aptible;$/m);
    // Other roles keep their password hashes: they must log in on the target as before.
    expect(text).toMatch(/^ALTER ROLE app WITH .*PASSWORD 'SCRAM-SHA-256/m);
    expect(text).toMatch(/^ALTER ROLE aptible2 WITH .*PASSWORD 'SCRAM-SHA-256/m);
    // The rows the guide's grep would have deleted.
    expect(text).toContain("\nALTER ROLE aptible WITH LOGIN PASSWORD 'from-a-row';\n");
    expect(text.match(/\tALTER ROLE aptible PASSWORD 'in-a-column'\n/g)).toHaveLength(5);
    // Recent pg_dumpall protects each script with \restrict ... \unrestrict; both must survive.
    const restricts = text.match(/^\\restrict \S+$/gm) ?? [];
    expect(restricts.length).toBe((text.match(/^\\unrestrict \S+$/gm) ?? []).length);
  });

  it('dumps the schema only when asked', async () => {
    const path = join(work, 'schema', 'schema.sql');
    const result = await dumpAll(source, path, { adminRole: ADMIN, schemaOnly: true });
    const text = await readFile(path, 'utf8');
    expect(result.droppedStatements).toBe(1);
    expect(text).toContain('CREATE TABLE public.orders');
    expect(text).not.toMatch(/^COPY /m);
  });

  it('stops pg_dumpall when cancelled and leaves no file behind', async () => {
    const path = join(work, 'cancelled', 'dump.sql');
    const controller = new AbortController();
    let abortedAt = 0;
    const err = await dumpAll(source, path, {
      adminRole: ADMIN,
      signal: controller.signal,
      onProgress: () => {
        abortedAt ||= Date.now();
        controller.abort(new Error('cancelled by test'));
      },
    }).catch((e: unknown) => e);
    expect((err as Error).message).toBe('cancelled by test');
    // From the abort, not the start: a loaded machine may take long to start pg_dumpall, never to kill it.
    expect(Date.now() - abortedAt).toBeLessThan(10_000);
    // pg_dumpall and the pg_dump it started are gone, so are their sessions.
    expect(await waitFor(async () => (await otherSessions(source)) === 0, 60_000)).toBe(true);
    expect(await exists(path)).toBe(false);
    expect(await exists(`${path}.partial`)).toBe(false);
  });

  it('redacts the password from its errors', async () => {
    const bad = { ...source, database: `missing_${source.password}` };
    const path = join(work, 'failed', 'dump.sql');
    const err = (await dumpAll(bad, path, { adminRole: ADMIN }).catch((e: unknown) => e)) as Error;
    expect(err.message).toMatch(/pg_dumpall exited with code 1/);
    expect(err.message).toContain('missing_***');
    expect(err.message).not.toContain(source.password);
    expect(await exists(`${path}.partial`)).toBe(false);
  });
});

describe('restore', () => {
  let firstReport: Awaited<ReturnType<typeof compareServers>>;

  it('restores into PostgreSQL 17 with only the expected errors, and the target matches', async () => {
    const progress: unknown[] = [];
    const result = await restoreDump(target, dumpPath, {
      expected: EXPECTED,
      sha256: dumpSha,
      onProgress: (p) => progress.push(p),
    });
    expect(result.unexpected).toEqual([]);
    const size = (await stat(dumpPath)).size;
    expect(progress.at(-1)).toEqual({ bytesRead: size, totalBytes: size });
    expect(result.expected.map(errorMessageText).sort()).toEqual([...EXPECTED].sort());

    firstReport = await compareServers(source, target, { adminRole: ADMIN });
    expect(firstReport.mismatches).toEqual([]);
    expect(firstReport.ok).toBe(true);
    expect(firstReport.databases.map((d) => d.name)).toEqual([
      'analytics',
      'db',
      'postgres',
      'shop',
      'template1',
    ]);
    const shop = firstReport.databases.find((d) => d.name === 'shop')!;
    expect(shop.tables.map((t) => [t.name, t.sourceRows, t.targetRows])).toEqual([
      ['Mixed Case "Quoted" t', 3, 3],
      ['big', 150000, 150000],
      ['measurements_2024', 213, 213],
      ['measurements_2025', 187, 187],
      ['orders', 500, 500],
    ]);
    expect(shop.sequences).toEqual([
      { schema: 'public', name: 'invoice_no', sourceValue: '1006', targetValue: '1006', match: true },
      {
        schema: 'public',
        name: 'never_used',
        sourceValue: '1 (not yet used)',
        targetValue: '1 (not yet used)',
        match: true,
      },
      { schema: 'public', name: 'orders_id_seq', sourceValue: '500', targetValue: '500', match: true },
    ]);
    expect(firstReport.rowsVerified).toBe(2 + 3 + 150000 + 400 + 500 + 2 + 1);
    expect(
      await scalar(target, 'db', "SELECT count(*)::int FROM notes WHERE entry LIKE 'ALTER ROLE aptible%'"),
    ).toBe(1);
    expect(
      await scalar(target, 'shop', "SELECT count(*)::int FROM orders WHERE doc->>'customer' = 'c3'"),
    ).toBe(30);
  });

  it('leaves the target admin password alone and brings the other roles with theirs', async () => {
    expect(source.password).not.toBe(target.password);
    expect(await canLogIn(target)).toBe(true);
    expect(await canLogIn({ ...target, password: source.password })).toBe(false);
    expect(await canLogIn({ ...target, user: 'app', password: APP_PASSWORD })).toBe(true);
  });

  it('after resetTarget, a second restore gives exactly the first result (no duplicated rows)', async () => {
    // Sessions left on the target (say, by a killed restore) must not block the reset.
    const leftovers = await Promise.all(['shop', 'db', 'template1'].map((db) => openClient(target, db)));
    const reset = await resetTarget(target, { adminRole: ADMIN }).finally(() =>
      Promise.all(leftovers.map((c) => c.end().catch(() => undefined))),
    );
    expect(reset.droppedDatabases.sort()).toEqual(['analytics', 'shop']);
    expect(reset.recreatedDatabases.sort()).toEqual(['db', 'postgres', 'template1']);
    expect(reset.droppedRoles.sort()).toEqual(['app', 'aptible2', 'reporting']);
    expect(await listDatabases(target)).toEqual(['db', 'postgres']);
    expect(await scalar(target, 'db', "SELECT to_regclass('public.notes')::text")).toBeNull();
    expect(await canLogIn(target)).toBe(true);

    const result = await restoreDump(target, dumpPath, { expected: EXPECTED });
    expect(result.unexpected).toEqual([]);
    expect(result.expected.map(errorMessageText).sort()).toEqual([...EXPECTED].sort());
    // As the restore activity does: the recreated postgres and template1 get the source's properties back.
    expect(await carryDatabaseProperties(source, target)).toEqual([]);
    const second = await compareServers(source, target, { adminRole: ADMIN });
    expect({ ...second, durationMs: 0 }).toEqual({ ...firstReport, durationMs: 0 });
    expect(await scalar(target, 'template1', 'SELECT count(*)::int FROM tpl_marker')).toBe(1);
  });

  it('vacuums and analyzes every database', async () => {
    expect(await vacuumAnalyzeAll(target)).toEqual(['analytics', 'db', 'postgres', 'shop']);
    expect(
      await scalar(target, 'shop', "SELECT count(*)::int FROM pg_stats WHERE tablename = 'orders'"),
    ).toBeGreaterThan(0);
  });

  it('reports changed, missing and extra rows, sequences and databases as mismatches', async () => {
    await sql(target, 'shop', "UPDATE orders SET note = 'changed' WHERE id = 7");
    await sql(target, 'analytics', 'DELETE FROM "Reports"."daily totals" WHERE total = 11');
    await sql(target, 'shop', "SELECT setval('invoice_no', 5000)");
    const report = await compareServers(source, target, { adminRole: ADMIN });
    expect(report.ok).toBe(false);
    expect(report.mismatches).toEqual([
      'analytics: table "Reports"."daily totals": source 2 rows, target 1',
      'shop: table public.orders: 500 rows on both sides, but their contents differ',
      'shop: sequence public.invoice_no: source at 1006, target at 5000',
    ]);
    expect(
      report.databases.find((d) => d.name === 'shop')!.tables.find((t) => t.name === 'orders')!.match,
    ).toBe(false);

    await sql(target, 'postgres', 'DROP DATABASE analytics');
    expect((await compareServers(source, target, { adminRole: ADMIN })).mismatches).toContain(
      'analytics: database missing on target',
    );
  });
});

describe('unexpected restore errors', () => {
  it('reports a statement the target rejects, and still restores the rest', async () => {
    await resetTarget(target, { adminRole: ADMIN });
    const edited = join(work, 'edited', 'dump.sql');
    const original = await readFile(dumpPath, 'utf8');
    await mkdir(dirname(edited), { recursive: true });
    await writeFile(
      edited,
      original.replace('\n\\connect shop\n', '\n\\connect shop\nCREATE TABLE broken (x no_such_type);\n'),
    );
    const result = await restoreDump(target, edited, { expected: EXPECTED });
    expect(result.unexpected).toEqual([
      expect.stringMatching(
        /^psql:.*dump\.sql:\d+: ERROR: {2}type "no_such_type" does not exist\nLINE 1: CREATE TABLE broken/,
      ),
    ]);
    expect(result.expected.map(errorMessageText).sort()).toEqual([...EXPECTED].sort());
    expect(await scalar(target, 'shop', 'SELECT count(*)::int FROM orders')).toBe(500);
  });

  it('refuses, as DumpMissingError, a dump that is not the file the dump step wrote, stopping psql', async () => {
    // The check runs while psql reads: psql is stopped, and the workflow dumps anew into a reset target.
    await resetTarget(target, { adminRole: ADMIN });
    const other = join(work, 'not-the-dump', 'dump.sql');
    await mkdir(dirname(other), { recursive: true });
    await writeFile(other, `${await readFile(dumpPath, 'utf8')}\n-- not the file the dump step wrote\n`);
    const err = await restoreDump(target, other, { expected: EXPECTED, sha256: dumpSha }).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(DumpMissingError);
    expect((err as Error).message).toMatch(/not the file the dump step wrote/);
    // Hashing a few MB ends long before psql has restored shop's 150 000 rows: it was stopped part way.
    const bigRows = async () => {
      if (!(await listDatabases(target)).includes('shop')) return 0;
      if (!(await scalar(target, 'shop', "SELECT count(*)::int FROM pg_class WHERE relname = 'big'")))
        return 0;
      return scalar<number>(target, 'shop', 'SELECT count(*)::int FROM big');
    };
    expect(await bigRows()).toBeLessThan(150000);
  });

  it('reports a source setting that PostgreSQL 17 no longer knows', async () => {
    // force_parallel_mode was renamed in PostgreSQL 16; a role setting using it cannot be restored.
    await sql(source, 'postgres', "ALTER ROLE app SET force_parallel_mode = 'off'");
    try {
      const path = join(work, 'old-setting', 'dump.sql');
      await dumpAll(source, path, { adminRole: ADMIN });
      await resetTarget(target, { adminRole: ADMIN });
      const result = await restoreDump(target, path, { expected: EXPECTED });
      expect(result.unexpected).toHaveLength(1);
      expect(result.unexpected[0]).toMatch(
        /ERROR: {2}unrecognized configuration parameter "force_parallel_mode"/,
      );
    } finally {
      await sql(source, 'postgres', 'ALTER ROLE app RESET force_parallel_mode');
    }
  });

  it('throws RestoreInterruptedError, retryable, for a connection lost part way', async () => {
    const path = join(work, 'lost', 'dump.sql');
    await mkdir(dirname(path), { recursive: true });
    await writeFile(path, 'SELECT pg_sleep(30);\nCREATE TABLE never_reached (x int);\n');
    const killer = waitFor(
      async () =>
        (await scalar<number>(
          target,
          'postgres',
          "SELECT count(pg_terminate_backend(pid))::int FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep(30)%' AND pid <> pg_backend_pid()",
        )) > 0,
      10_000,
    );
    const err = await restoreDump(target, path, { expected: EXPECTED }).catch((e: unknown) => e);
    expect(await killer).toBe(true);
    expect(err).toBeInstanceOf(RestoreInterruptedError);
    expect(NON_RETRYABLE_ERRORS).not.toContain((err as Error).name);
    const message = (err as Error).message;
    expect(message).toMatch(/^psql lost its connection to the target part way through the dump/);
    expect(message).toMatch(/FATAL: {2}terminating connection due to administrator command/);
    expect(message).toMatch(/error: connection to server was lost\n/);
    expect(message).toMatch(/retried from a reset target/);
    expect(await scalar(target, 'db', "SELECT to_regclass('never_reached')::text")).toBeNull();
  });

  it('throws, redacted, when psql cannot connect at all', async () => {
    const err = (await restoreDump({ ...target, database: `nope_${target.password}` }, dumpPath, {
      expected: EXPECTED,
    }).catch((e: unknown) => e)) as Error;
    expect(err).toBeInstanceOf(RestoreInterruptedError);
    expect(err.message).toMatch(/psql cannot connect/);
    expect(err.message).toContain('nope_***');
    expect(err.message).not.toContain(target.password);
  });

  it('stops psql when cancelled', async () => {
    const slow = join(work, 'slow', 'slow.sql');
    await mkdir(dirname(slow), { recursive: true });
    await writeFile(slow, 'SELECT pg_sleep(60);\n');
    const controller = new AbortController();
    const restoring = restoreDump(target, slow, { expected: EXPECTED, signal: controller.signal }).then(
      () => new Error('the restore was not cancelled'),
      (e: unknown) => e as Error,
    );
    // Cancelled only once psql runs, however long a busy machine takes to start it.
    expect(await waitFor(async () => (await processesMentioning(slow)) === 1, 30_000)).toBe(true);
    const cancelledAt = Date.now();
    controller.abort(new Error('restore cancelled by test'));
    const err = await restoring;
    expect(err.message).toBe('restore cancelled by test');
    expect(Date.now() - cancelledAt).toBeLessThan(10_000);
    expect(await waitFor(async () => (await processesMentioning(slow)) === 0, 5000)).toBe(true);
  });
});

describe('a restore whose psql is killed', () => {
  it('fails with the retryable RestoreInterruptedError, and the retry from a reset target duplicates nothing', async () => {
    await resetTarget(target, { adminRole: ADMIN });
    // The source's own dump, paused right after the 150000 rows of shop.big are in, so the kill lands
    // mid-way. The pause holds only while the database pause_once exists: the retry's reset drops it.
    const original = await readFile(dumpPath, 'utf8');
    const copyOfBig = /^COPY public\.big .*?^\\\.\n/ms;
    expect(original).toMatch(copyOfBig);
    const paused = original.replace(
      copyOfBig,
      (copy) => `${copy}SELECT pg_sleep(600) FROM pg_database WHERE datname = 'pause_once';\n`,
    );
    const path = join(work, 'killed', 'dump.sql');
    await mkdir(dirname(path), { recursive: true });
    await writeFile(path, paused);
    await sql(target, 'postgres', 'CREATE DATABASE pause_once');

    const restoring = restoreDump(target, path, { expected: EXPECTED }).then(
      () => new Error('the restore completed'),
      (e: unknown) => e as Error,
    );
    const pausing = async () =>
      (await scalar<number>(
        target,
        'postgres',
        "SELECT count(*)::int FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep(600)%'",
      )) === 1;
    expect(await waitFor(pausing, 60_000)).toBe(true);
    expect(await scalar<number>(target, 'shop', 'SELECT count(*)::int FROM big')).toBe(150000);
    const psql = await pidsMentioning(path);
    expect(psql).toHaveLength(1);
    // As the OOM killer would.
    process.kill(psql[0], 'SIGKILL');

    const err = await restoring;
    expect(err).toBeInstanceOf(RestoreInterruptedError);
    expect(NON_RETRYABLE_ERRORS).not.toContain(err.name);
    expect(err.message).toMatch(/^psql was killed by SIGKILL, a signal pgshift did not send/);
    expect(err.message).toMatch(/retried from a reset target/);
    expect(err.message).not.toMatch(/fix these on the source/i);

    // The retry, as the restore activity makes it: the target reset (which also ends the session the
    // killed psql left sleeping), then the same dump restored again.
    await resetTarget(target, { adminRole: ADMIN });
    const result = await restoreDump(target, path, { expected: EXPECTED });
    expect(result.unexpected).toEqual([]);
    expect(await scalar<number>(target, 'shop', 'SELECT count(*)::int FROM big')).toBe(150000);
    // Every table of every database holds the source's rows, no more: nothing was restored twice.
    const tables = (await compareServers(source, target)).databases.flatMap((d) =>
      d.tables.map((t) => [`${d.name}.${t.schema}.${t.name}`, t.sourceRows, t.targetRows, t.match]),
    );
    expect(tables.length).toBeGreaterThanOrEqual(7);
    expect(tables.filter(([, , , match]) => !match)).toEqual([]);
  });
});
