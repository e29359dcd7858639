// The verification against real clusters: a rich PostgreSQL 14 source copied into 17 with the real
// pg_dumpall and psql must verify ok (no false alarm), and each kind of damage done to the target on purpose
// must make it fail, naming the database and the object.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Client } from 'pg';
import type { VerificationReport } from '../src/activities/contract';
import { failureMessage } from '../src/activities/verify';
import type { LocalPlatform } from '../src/platform/local';
import type { DatabaseConnection } from '../src/platform/platform';
import { type PgTarget, openClient, withClient } from '../src/pg/connection';
import { dumpAll } from '../src/pg/dump';
import { restoreDump } from '../src/pg/restore';
import { defaultExpectedErrors } from '../src/pg/restore-errors';
import { compareServers } from '../src/pg/verify';
import { compareDatabase } from '../src/pg/verify/database';
import { compareLargeObjects } from '../src/pg/verify/large-objects';
import { MAX_DETAIL_LINES, MAX_MISMATCHES, ReportBuilder } from '../src/pg/verify/report';
import { openSnapshotPool } from '../src/pg/verify/session';
import { aclItemWithoutMaintain, normalizeClass } from '../src/pg/verify/version-differences';
import {
  AWKWARD_DB,
  BIG_ROWS,
  CLOSED_DB,
  NEWLINE_DB,
  carryPostgresProperties,
  createNewlineDatabase,
  populateRichSource,
  sql,
} from './helpers/verify-source';
import { startClusterPair } from './helpers/cluster-pair';

const ENV = 'verify';
const ADMIN = 'aptible';
const OPTIONS = { adminRole: ADMIN, skipDatabases: [CLOSED_DB] };

let home: string;
let platform: LocalPlatform;
let source: DatabaseConnection;
let target: DatabaseConnection;

async function scalar<T = string>(t: PgTarget, db: string, text: string): Promise<T> {
  return withClient(t, db, async (c) => Object.values((await c.query(text)).rows[0])[0] as T);
}

async function waitFor(check: () => Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return true;
    await new Promise((r) => setTimeout(r, 200));
  }
  return check();
}

/** Sessions other than the asking one, on any database of a server. */
async function otherSessions(t: PgTarget): Promise<number> {
  return scalar<number>(
    t,
    'postgres',
    "SELECT count(*)::int FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()",
  );
}

beforeAll(async () => {
  home = await mkdtemp(join(tmpdir(), 'pgshift-verify-'));
  ({ platform, source, target } = await startClusterPair(home, {
    environment: ENV,
    createdBy: 'verify-test',
    handles: {
      source: 'rich14',
      target: 'copy17',
    },
  }));
  await populateRichSource(source);
  const dump = join(home, 'dump.sql');
  await dumpAll(source, dump, { adminRole: ADMIN });
  const restored = await restoreDump(target, dump, { expected: defaultExpectedErrors(ADMIN, 'db') });
  expect(restored.unexpected).toEqual([]);
  await carryPostgresProperties(target);
  await createNewlineDatabase(source);
  await createNewlineDatabase(target);
});

afterAll(async () => {
  await source?.close();
  await target?.close();
  await platform?.destroy();
  if (home) await rm(home, { recursive: true, force: true });
});

describe('a faithful copy', () => {
  let report: VerificationReport;

  it('verifies ok from 14 to 17, telling only what is no loss', async () => {
    const progress: { tablesDone: number; tablesTotal: number }[] = [];
    report = await compareServers(source, target, { ...OPTIONS, onProgress: (p) => progress.push(p) });
    expect(report.mismatches).toEqual([]);
    expect(report.ok).toBe(true);
    expect(report.mismatchCount).toBe(0);
    expect(report.skipped).toEqual([CLOSED_DB]);
    expect(report.notes).toEqual([
      'shop: extension btree_gist: version 1.6 on the source, 1.7 on the target',
    ]);
    expect(report.databases.map((d) => d.name)).toEqual(
      ['analytics', 'db', NEWLINE_DB, 'postgres', 'shop', 'template1', AWKWARD_DB].sort(),
    );
    expect(report.durationMs).toBeGreaterThan(0);
    expect(progress.at(-1)).toEqual(
      expect.objectContaining({ database: AWKWARD_DB, tablesDone: 1, tablesTotal: 1 }),
    );
  });

  it('reads every table in full, a hash-partitioned tree at its root, range partitions one by one', () => {
    const shop = report.databases.find((d) => d.name === 'shop')!;
    const rows = Object.fromEntries(
      shop.tables.map((t) => [`${t.schema}.${t.name}`, [t.sourceRows, t.kind]]),
    );
    expect(rows).toEqual({
      'Sales "EU".Big "Quoted" t': [3, undefined],
      'public.audit_log': [1, undefined],
      'public.base_items': [1, undefined],
      'public.customers': [97, undefined],
      'public.events': [1000, 'partition tree'],
      'public.later_totals': [0, 'matview'],
      'public.measurements_2024': [213, undefined],
      'public.measurements_2025': [365, undefined],
      'public.measurements_other': [422, undefined],
      'public.order_lines': [1000, undefined],
      'public.order_totals': [97, 'matview'],
      'public.orders': [BIG_ROWS, undefined],
      'public.sessions': [100, undefined],
      'public.special_items': [1, undefined],
    });
    expect(shop.tables.every((t) => t.match && t.sourceRows === t.targetRows)).toBe(true);
    expect(shop.sequences.map((s) => [s.name, s.sourceValue])).toEqual([
      ['invoice_no', '1045'],
      ['never_used', '1 (not yet used)'],
      ['orders_id_seq', String(BIG_ROWS)],
    ]);
    const classes = report.classes!;
    for (const cls of [
      'functions',
      'comments',
      'types',
      'policies',
      'triggers',
      'rules',
      'default privileges',
    ]) {
      expect([cls, classes[cls]?.compared]).toEqual([cls, expect.any(Number)]);
      expect(classes[cls].mismatched).toBe(0);
    }
    expect(classes['large objects'].compared).toBe(3);
    expect(classes['roles'].compared).toBe(5);
    expect(classes['databases'].compared).toBe(7);
  });

  it('names a database the plan did not accept to leave behind', async () => {
    const strict = await compareServers(source, target, { adminRole: ADMIN });
    expect(strict.mismatches).toEqual([`${CLOSED_DB}: database missing on target`]);
  });
});

/** Runs `fn` on a client of each server inside a transaction rolled back after: what it sets up vanishes. */
async function rolledBack(
  db: string,
  fn: (s: Client, t: Client) => Promise<void>,
  setup: { source?: string; target?: string } = {},
): Promise<void> {
  await withClient(source, db, (s) =>
    withClient(target, db, async (t) => {
      await Promise.all([s.query('BEGIN'), t.query('BEGIN')]);
      try {
        if (setup.source) await s.query(setup.source);
        if (setup.target) await t.query(setup.target);
        await fn(s, t);
      } finally {
        await Promise.all([s.query('ROLLBACK'), t.query('ROLLBACK')]);
      }
    }),
  );
}

describe('what the verification cannot read or prove', () => {
  it('keeps the fields of a large object apart in its hash (oid 77001 and owner "1x" are not 770011 and "x")', async () => {
    const report = new ReportBuilder();
    const lo = (oid: number, owner: string) =>
      `CREATE ROLE ${owner}; SELECT lo_from_bytea(${oid}, 'same'); ALTER LARGE OBJECT ${oid} OWNER TO ${owner};
       REVOKE ALL ON LARGE OBJECT ${oid} FROM ${owner}`;
    await rolledBack('shop', (s, t) => compareLargeObjects(s, t, 'shop', report), {
      source: lo(77001, '"1x"'),
      target: lo(770011, 'x'),
    });
    expect(report.report.mismatches).toEqual([
      'shop: large object 77001: missing on target',
      'shop: large object 770011: on the target only',
    ]);
  });

  it('compares a large object over 1 GB in chunks, finding a byte that differs at its end', async () => {
    const report = new ReportBuilder();
    // Sparse: a byte past 1 GB, the pages before it never written; lo_get cannot read it whole (54000).
    const big = (last: string) =>
      `SELECT lo_from_bytea(77002, 'head'); SELECT lo_put(77002, 1073741824, '${last}')`;
    await rolledBack('shop', (s, t) => compareLargeObjects(s, t, 'shop', report), {
      source: big('x'),
      target: big('y'),
    });
    expect(report.report.notes).toEqual([]);
    expect(report.report.mismatches).toEqual(['shop: large object 77002: content differs']);
    expect(report.report.classes!['large objects']).toEqual({ compared: 4, mismatched: 1 });
  }, 120_000);

  it('still compares owners and privileges when the role may not read the contents, and is not ok', async () => {
    const report = new ReportBuilder();
    await rolledBack('shop', (s, t) => compareLargeObjects(s, t, 'shop', report), {
      source: 'SET LOCAL ROLE reporting',
      target: `ALTER LARGE OBJECT 424244 OWNER TO app; SET LOCAL ROLE reporting`,
    });
    expect(report.report.ok).toBe(false);
    const denied = (side: string) =>
      `shop: large objects: contents not verified: the role "reporting" may not read some of them on the ${side} ` +
      '(their OIDs, owners and privileges were compared); verify as a superuser, or GRANT SELECT ON LARGE ' +
      'OBJECT <oid> TO "reporting" for each';
    expect(report.report.mismatches).toEqual([
      denied('source'),
      denied('target'),
      `shop: large object 424244: owner differs (source ${ADMIN}, target app); privileges differ`,
    ]);
  });

  it('lets any other error of the large objects go on, for a retry', async () => {
    const report = new ReportBuilder();
    const s = await openClient(source, 'shop');
    s.on('error', () => undefined);
    try {
      await withClient(target, 'shop', async (t) => {
        await Promise.all([s.query('BEGIN'), t.query('BEGIN')]);
        // A killed backend: the source's summary fails, and so would ROLLBACK TO SAVEPOINT.
        const pid = (await s.query<{ p: number }>('SELECT pg_backend_pid() AS p')).rows[0].p;
        await sql(source, 'postgres', `SELECT pg_terminate_backend(${pid})`);
        await expect(compareLargeObjects(s, t, 'shop', report)).rejects.toThrow(/terminat|connection/i);
        await t.query('ROLLBACK');
      });
    } finally {
      await s.end().catch(() => undefined);
    }
    expect(report.report.notes).toEqual([]);
  });

  it('errors instead of reading only the rows a role subject to row-level security sees', async () => {
    const pool = await openSnapshotPool(source, 'shop', 1);
    try {
      await pool.leader.query('SET LOCAL ROLE reporting');
      await expect(pool.leader.query('SELECT count(*) FROM public.orders')).rejects.toThrow(
        /row-level security policy for table "orders"/,
      );
    } finally {
      await pool.close();
    }
  });

  it('is not ok when a source older than 12 only lets rows be counted', async () => {
    const report = new ReportBuilder();
    await compareDatabase(source, target, AWKWARD_DB, report, {
      versions: { source: 11, target: 17 },
      parallel: 1,
    });
    expect(report.report.ok).toBe(false);
    expect(report.report.mismatches).toEqual([
      expect.stringMatching(/^"we\\"ird db": not verified: PostgreSQL 11 → 17: .*rows were only counted$/),
    ]);
  });

  it("strips 17's MAINTAIN from the privilege letters only, whatever the grantee's name holds", () => {
    expect(aclItemWithoutMaintain('"a=m"=r/o')).toBe('"a=m"=r/o');
    expect(aclItemWithoutMaintain('"x""=m"=m*r/"o=m"')).toBe('"x""=m"=r/"o=m"');
    expect(aclItemWithoutMaintain('=arwdDxtm/o')).toBe('=arwdDxt/o');
    const source = new Map([['t', { privileges: ['"a=m"=r/o', 'o=arwdDxt/o'] }]]);
    const target = new Map([['t', { privileges: ['"a=m"=r/o', 'o=arwdDxtm/o'] }]]);
    normalizeClass('tables and views', source, target, { source: 14, target: 17 }, () => undefined);
    expect(target.get('t')!.privileges).toEqual(source.get('t')!.privileges);
  });
});

interface Damage {
  what: string;
  db: string;
  damage: string;
  repair: string;
  expected: (string | RegExp)[];
}

const REPLICA = 'SET session_replication_role = replica;';

const DAMAGES: Damage[] = [
  {
    what: 'one row changed in a 200k-row table',
    db: 'shop',
    damage: `${REPLICA} UPDATE orders SET customer = 'changed' WHERE id = 123456`,
    repair: `${REPLICA} UPDATE orders SET customer = 'c' || (123456 % 97) WHERE id = 123456`,
    expected: [`shop: table public.orders: ${BIG_ROWS} rows on both sides, but their contents differ`],
  },
  {
    what: 'a row deleted in a database with an awkward name',
    db: AWKWARD_DB,
    damage: `DELETE FROM "odd table" WHERE k = 'k7'`,
    repair: `INSERT INTO "odd table" VALUES ('k7', E'line\\n7')`,
    expected: ['"we\\"ird db": table public."odd table": source 50 rows, target 49'],
  },
  {
    what: 'a function body',
    db: 'shop',
    damage:
      'CREATE OR REPLACE FUNCTION total(integer) RETURNS numeric LANGUAGE sql STABLE AS $$ SELECT 0::numeric $$',
    repair: `CREATE OR REPLACE FUNCTION total(integer) RETURNS numeric LANGUAGE sql STABLE
               AS $$ SELECT coalesce(sum(total), 0) FROM public.orders WHERE id <= $1 $$`,
    expected: ['shop: function public.total(integer): body differs'],
  },
  {
    what: 'a comment',
    db: 'shop',
    damage: "COMMENT ON COLUMN orders.customer IS 'someone'",
    repair: "COMMENT ON COLUMN orders.customer IS 'who ordered'",
    expected: [
      'shop: comment on table column public.orders.customer: text differs (source "who ordered", target "someone")',
    ],
  },
  {
    what: 'a view',
    db: 'shop',
    damage: `CREATE OR REPLACE VIEW paid_orders WITH (security_barrier) AS
               SELECT o.id, o.customer, o.total, c.email FROM orders o LEFT JOIN customers c ON c.name = o.customer
                WHERE o.status = 'paid'::status AND o.total > 11::numeric ORDER BY o.id`,
    repair: `CREATE OR REPLACE VIEW paid_orders WITH (security_barrier) AS
               SELECT o.id, o.customer, o.total, c.email FROM orders o LEFT JOIN customers c ON c.name = o.customer
                WHERE o.status = 'paid'::status AND o.total > 10::numeric ORDER BY o.id`,
    expected: ['shop: view public.paid_orders: definition differs'],
  },
  {
    what: 'a materialized view refreshed from other rows',
    db: 'shop',
    damage: `${REPLICA} UPDATE orders SET total = total + 1 WHERE id = 1; REFRESH MATERIALIZED VIEW order_totals;
             UPDATE orders SET total = total - 1 WHERE id = 1`,
    repair: 'REFRESH MATERIALIZED VIEW order_totals',
    expected: [
      'shop: materialized view public.order_totals: 97 rows on both sides, but their contents differ',
    ],
  },
  {
    what: "a large object's content and another's owner",
    db: 'shop',
    damage: `SELECT lo_put(424243, 0, '\\x00'); ALTER LARGE OBJECT 424242 OWNER TO ${ADMIN}`,
    repair: `SELECT lo_put(424243, 0, '\\xab'); ALTER LARGE OBJECT 424242 OWNER TO app`,
    expected: [
      `shop: large object 424242: owner differs (source app, target ${ADMIN}); privileges differ`,
      'shop: large object 424243: content differs',
    ],
  },
  {
    what: 'a grant revoked',
    db: 'shop',
    damage: 'REVOKE SELECT ON orders FROM reporting',
    repair: 'GRANT SELECT ON orders TO reporting',
    expected: [
      'shop: table public.orders: privileges differ (source ["app=arwdDxt/app","reporting=r/app"], target ["app=arwdDxt/app"])',
    ],
  },
  {
    what: 'a default privilege',
    db: 'shop',
    damage: 'ALTER DEFAULT PRIVILEGES FOR ROLE app IN SCHEMA public REVOKE SELECT ON TABLES FROM reporting',
    repair: 'ALTER DEFAULT PRIVILEGES FOR ROLE app IN SCHEMA public GRANT SELECT ON TABLES TO reporting',
    expected: ['shop: default privileges of app in schema public on tables: missing on target'],
  },
  {
    what: 'a trigger disabled',
    db: 'shop',
    damage: 'ALTER TABLE orders DISABLE TRIGGER orders_touch',
    repair: 'ALTER TABLE orders ENABLE TRIGGER orders_touch',
    expected: ['shop: trigger orders_touch on public.orders: enabled differs (source "O", target "D")'],
  },
  {
    what: 'a policy',
    db: 'shop',
    damage: 'ALTER POLICY own_orders ON orders USING (true)',
    repair: 'ALTER POLICY own_orders ON orders USING (customer = current_user)',
    expected: [
      /^shop: policy own_orders on public\.orders: using differs \(source ".*CURRENT_USER.*", target "true"\)$/,
    ],
  },
  {
    what: 'a column default',
    db: 'shop',
    damage: 'ALTER TABLE customers ALTER COLUMN region DROP DEFAULT',
    repair: "ALTER TABLE customers ALTER COLUMN region SET DEFAULT 'eu'",
    expected: [
      /^shop: table public\.customers: column region: default differs \(source "'eu'::text", target null\)$/,
    ],
  },
  {
    what: 'a sequence value',
    db: 'shop',
    damage: "SELECT setval('invoice_no', 5000)",
    // CACHE 10: the source's last_value is the end of the block its session took, and so is the copy's.
    repair: "SELECT setval('invoice_no', 1045)",
    expected: ['shop: sequence public.invoice_no: source at 1045, target at 5000'],
  },
  {
    what: 'a database setting',
    db: 'postgres',
    damage: 'ALTER DATABASE shop RESET search_path',
    repair: `ALTER DATABASE shop SET search_path = public, "Sales ""EU"""`,
    expected: ['shop: database settings differ (search_path)'],
  },
  {
    what: 'a role attribute',
    db: 'postgres',
    damage: 'ALTER ROLE reporting CREATEDB',
    repair: 'ALTER ROLE reporting NOCREATEDB',
    expected: ['role reporting: create database differs (source false, target true)'],
  },
  {
    what: 'a role membership',
    db: 'postgres',
    damage: 'REVOKE reporting FROM app',
    repair: `GRANT reporting TO app WITH ADMIN OPTION GRANTED BY ${ADMIN}`,
    expected: [`membership of app in reporting granted by ${ADMIN}: missing on target`],
  },
];

describe('damage done to the target on purpose', () => {
  it.each(DAMAGES)('finds $what', async ({ db, damage, repair, expected }) => {
    await sql(target, db, damage);
    try {
      const report = await compareServers(source, target, OPTIONS);
      expect(report.ok).toBe(false);
      expect(report.mismatches).toEqual(
        expected.map((e) => (typeof e === 'string' ? e : expect.stringMatching(e))),
      );
    } finally {
      await sql(target, db, repair);
    }
  });

  it('finds a changed password without printing it', async () => {
    const hash = await scalar(source, 'postgres', "SELECT rolpassword FROM pg_authid WHERE rolname = 'app'");
    await sql(target, 'postgres', "ALTER ROLE app PASSWORD 'another-password'");
    try {
      const report = await compareServers(source, target, OPTIONS);
      expect(report.mismatches).toEqual(['role app: password differs']);
    } finally {
      await sql(target, 'postgres', `ALTER ROLE app PASSWORD '${hash}'`);
    }
  });

  it('is ok again once every damage is repaired', async () => {
    expect((await compareServers(source, target, OPTIONS)).mismatches).toEqual([]);
  });

  it('stops at once when cancelled, leaving no session behind', async () => {
    const controller = new AbortController();
    const started = Date.now();
    const err = await compareServers(source, target, {
      ...OPTIONS,
      signal: controller.signal,
      onProgress: () => controller.abort(new Error('cancelled by test')),
    }).catch((e: unknown) => e);
    expect((err as Error).message).toBe('cancelled by test');
    expect(Date.now() - started).toBeLessThan(30_000);
    expect(await waitFor(async () => (await otherSessions(source)) === 0, 10_000)).toBe(true);
    expect(await waitFor(async () => (await otherSessions(target)) === 0, 10_000)).toBe(true);
  });

  it('finds a missing database', async () => {
    await sql(target, 'postgres', 'DROP DATABASE analytics');
    const report = await compareServers(source, target, OPTIONS);
    expect(report.mismatches).toEqual(['analytics: database missing on target']);
    expect(report.databases.find((d) => d.name === 'analytics')).toEqual({
      name: 'analytics',
      tables: [],
      sequences: [],
    });
  });
});

describe('the report', () => {
  it('stays small for a database of 10,000 tables that all differ', () => {
    const builder = new ReportBuilder();
    const tables = Array.from({ length: 10_000 }, (_, i) => ({
      schema: 'public',
      name: `t${i}`,
      sourceRows: 5,
      targetRows: 4,
      match: false,
    }));
    for (const t of tables)
      builder.compared('table contents', `big: table public.${t.name}: source 5 rows, target 4`);
    builder.addDatabase({ name: 'big', tables, sequences: [] });
    const { report } = builder;
    expect(report.mismatches).toHaveLength(MAX_MISMATCHES);
    expect(report.mismatchCount).toBe(10_000);
    expect(report.databases[0].tables).toHaveLength(MAX_DETAIL_LINES);
    expect(report.databases[0].omitted).toBe(10_000 - MAX_DETAIL_LINES);
    expect(report.classes!['table contents']).toEqual({ compared: 10_000, mismatched: 10_000 });
    expect(JSON.stringify(report).length).toBeLessThan(100_000);
  });

  it('explains differing rows without guessing at writers the plan did not have', () => {
    const report: VerificationReport = {
      ok: false,
      databases: [],
      tablesCompared: 1,
      rowsVerified: 0,
      sequencesCompared: 0,
      mismatches: ['shop: table public.orders: source 10 rows, target 9'],
      mismatchCount: 1,
      classes: { 'table contents': { compared: 1, mismatched: 1 } },
    };
    const withoutServices = failureMessage(report, false);
    expect(withoutServices).toContain('shop: table public.orders: source 10 rows, target 9');
    expect(withoutServices).toMatch(/no service was scaled down for this copy/);
    expect(withoutServices).not.toMatch(/writer that is not among/);
    expect(withoutServices).not.toMatch(/Objects or properties differ/);
    expect(failureMessage(report, true)).toMatch(/something wrote to the source during the copy/);
    const schema = failureMessage(
      {
        ...report,
        classes: { functions: { compared: 1, mismatched: 1 } },
        mismatches: ['shop: function f(): body differs'],
      },
      false,
    );
    expect(schema).toMatch(/Objects or properties differ/);
    expect(schema).not.toMatch(/Rows, sequences or large objects differ/);
  });
});
