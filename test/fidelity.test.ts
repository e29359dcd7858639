// What pg_dumpall cannot carry, on real clusters: a PostgreSQL 14 source holding each kind of thing it skips
// or leaves out, preflight's verdict on it, and the restore that carries the properties of postgres and
// template1 into a PostgreSQL 17 target (the real dumpSource and restoreTarget activities, outside Temporal).
import { chown, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ApplicationFailure } from '@temporalio/common';
import { dumpSource, restoreTarget } from '../src/activities/copy';
import type { DumpResult, MigrationInput } from '../src/activities/contract';
import type { ActivityDeps } from '../src/activities/deps';
import { preflight } from '../src/activities/preflight';
import { PreflightError } from '../src/errors';
import { validatePlan } from '../src/plan/load';
import { findClientTools } from '../src/pg/client-tools';
import type { PlanInput } from '../src/plan/schema';
import type { DatabaseConnection } from '../src/platform/platform';
import type { LocalPlatform } from '../src/platform/local';
import { resolveServerUser } from '../src/platform/local/server-user';
import { type PgTarget, withClient } from '../src/pg/connection';
import {
  alterConfigCommand,
  carryDatabaseProperties,
  propertyStatements,
  splitGucList,
  sqlLiteral,
} from '../src/pg/database-properties';
import { type SourceFacts, judgeFidelity, readSourceFacts } from '../src/pg/fidelity';
import { classifyRestoreErrors } from '../src/pg/restore-errors';
import { startClusterPair } from './helpers/cluster-pair';

const ENV = 'fidelity';
const MIGRATION = 'pgshift-fidelity-test';

let home: string;
let work: string;
let tablespaceDir: string;
let platform: LocalPlatform;
let source: DatabaseConnection;
let target: DatabaseConnection;
let deps: ActivityDeps;

async function sql(t: PgTarget, db: string, ...statements: string[]): Promise<void> {
  await withClient(t, db, async (c) => {
    for (const s of statements) await c.query(s);
  });
}

function input(plan: Partial<PlanInput> = {}): MigrationInput {
  return {
    migrationId: MIGRATION,
    plan: validatePlan({
      platform: 'local',
      source: { handle: 'source14', environment: ENV },
      target: { handle: 'target17', version: '17' },
      ...plan,
    }),
  };
}

async function preflightError(plan: Partial<PlanInput>): Promise<string> {
  const err = await preflight(deps, input(plan)).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(PreflightError);
  return (err as Error).message;
}

// The properties the restore must carry, as the catalogs hold them; lists sorted so only content counts.
const PROPERTIES = `
  SELECT d.datname AS name, pg_get_userbyid(d.datdba) AS owner, shobj_description(d.oid, 'pg_database') AS comment,
         d.datconnlimit AS "connectionLimit",
         ARRAY(SELECT format('%s grants %s to %s%s', pg_get_userbyid(a.grantor), a.privilege_type,
                             CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(a.grantee) END,
                             CASE WHEN a.is_grantable THEN ' with grant option' ELSE '' END)
                 FROM aclexplode(coalesce(d.datacl, acldefault('d', d.datdba))) a ORDER BY 1) AS acl,
         ARRAY(SELECT coalesce(r.rolname::text, '(database)') || ': ' || array_to_string(s.setconfig, ' | ')
                 FROM pg_db_role_setting s LEFT JOIN pg_roles r ON r.oid = s.setrole
                WHERE s.setdatabase = d.oid ORDER BY 1) AS settings
    FROM pg_database d WHERE d.datname IN ('postgres', 'template1') ORDER BY 1`;

async function properties(t: PgTarget): Promise<unknown[]> {
  return withClient(t, 'db', async (c) =>
    (await c.query<{ acl: string[]; settings: string[] }>(PROPERTIES)).rows.map((r) => ({
      ...r,
      acl: [...r.acl].sort(),
      settings: [...r.settings].sort(),
    })),
  );
}

async function populateSource(s: PgTarget): Promise<void> {
  await sql(
    s,
    'postgres',
    'CREATE ROLE app LOGIN',
    'CREATE ROLE "Rep Role" NOLOGIN',
    'CREATE ROLE owner2 NOLOGIN',
    'CREATE DATABASE closed',
    'ALTER DATABASE closed WITH ALLOW_CONNECTIONS false',
    'CREATE DATABASE halfdropped',
    // What an interrupted DROP DATABASE leaves (PostgreSQL 14.9+ and 15.4+ mark it so).
    "UPDATE pg_database SET datconnlimit = -2 WHERE datname = 'halfdropped'",
    'CREATE DATABASE shop OWNER app',
    'CREATE SCHEMA app',
    'CREATE SCHEMA "Other Schema"',
    // postgres: every property pg_dumpall leaves out, with quoting that must survive.
    `COMMENT ON DATABASE postgres IS 'main: it''s a \\ backslash'`,
    'ALTER DATABASE postgres SET search_path TO app, "Other Schema", public',
    `ALTER DATABASE postgres SET app.x TO 'hello, "world"'`,
    "ALTER DATABASE postgres SET work_mem TO '8MB'",
    'ALTER DATABASE postgres CONNECTION LIMIT 50',
    'GRANT CREATE ON DATABASE postgres TO app',
    'GRANT CONNECT ON DATABASE postgres TO "Rep Role" WITH GRANT OPTION',
    'SET ROLE "Rep Role"',
    'GRANT CONNECT ON DATABASE postgres TO owner2',
    'RESET ROLE',
    "ALTER ROLE app IN DATABASE postgres SET statement_timeout TO '5s'",
    `ALTER ROLE "Rep Role" IN DATABASE postgres SET search_path TO "$user", ''`,
    // template1: another owner, no PUBLIC connect.
    "COMMENT ON DATABASE template1 IS 'template one'",
    "ALTER DATABASE template1 SET timezone TO 'Europe/Paris'",
    'REVOKE CONNECT ON DATABASE template1 FROM PUBLIC',
    'GRANT CONNECT ON DATABASE template1 TO app',
    'ALTER DATABASE template1 OWNER TO owner2',
    // Configuration, not data: never dumped.
    "ALTER SYSTEM SET work_mem = '6MB'",
    "SELECT pg_create_physical_replication_slot('standby_slot')",
    `CREATE TABLESPACE "Fast Disk" LOCATION '${tablespaceDir}'`,
    'CREATE TABLE on_fast_disk (x int) TABLESPACE "Fast Disk"',
  );
  await sql(
    s,
    'shop',
    'CREATE TABLE orders (id int PRIMARY KEY)',
    'INSERT INTO orders SELECT generate_series(1, 10)',
    // connect = false: created disabled, without reaching any publisher.
    "CREATE SUBSCRIPTION shop_feed CONNECTION 'host=127.0.0.1 port=1 dbname=nowhere' PUBLICATION feed WITH (connect = false)",
  );
}

beforeAll(async () => {
  home = await mkdtemp(join(tmpdir(), 'pgshift-fidelity-'));
  work = await mkdtemp(join(tmpdir(), 'pgshift-fidelity-work-'));
  // A tablespace needs a directory the server's OS user owns.
  tablespaceDir = await mkdtemp(join(tmpdir(), 'pgshift-fidelity-ts-'));
  const user = await resolveServerUser();
  if (user) await chown(tablespaceDir, user.uid, user.gid);
  ({ platform, source, target } = await startClusterPair(home, { environment: ENV, createdBy: MIGRATION }));
  deps = { platformFor: () => platform, workDir: work };
  await populateSource(source);
});

afterAll(async () => {
  await source?.close();
  await target?.close();
  await platform?.destroy();
  for (const dir of [work, tablespaceDir]) if (dir) await rm(dir, { recursive: true, force: true });
});

describe('preflight on a target older than the client tools', () => {
  it("refuses it before anything is made: the dump would carry syntax the target's version rejects", async () => {
    const { version } = await findClientTools();
    const message = await preflightError({ target: { handle: 'target14', version: '14' } });
    if (version > 14) {
      expect(message).toContain(
        `target.version 14 is older than the client tools (pg_dumpall ${version}), whose dump PostgreSQL 14 ` +
          `does not accept; set PGSHIFT_PG_BIN to client tools of version 14, or choose target.version ${version} or later`,
      );
    } else {
      expect(message).not.toContain('older than the client tools');
    }
    expect(await platform.getDatabase('target14', ENV)).toBeUndefined();
  });
});

describe('preflight on a source pg_dumpall cannot fully carry', () => {
  it('lists every refusal at once, each with its name and what to do', async () => {
    const message = await preflightError({ accept: { skipDatabases: ['clsoed'] } });
    expect(message).toMatch(/^preflight found 4 problems/);
    expect(message).toContain(
      'database "closed" does not allow connections (ALLOW_CONNECTIONS false), and pg_dumpall skips it without a word',
    );
    expect(message).toContain('ALTER DATABASE "closed" WITH ALLOW_CONNECTIONS true');
    expect(message).toMatch(/"closed".*drop it if it is unused, or list it under accept\.skipDatabases/);
    expect(message).toMatch(/database "halfdropped" is invalid .*DROP DATABASE "halfdropped"/);
    expect(message).toContain(
      `tablespace "Fast Disk" (${tablespaceDir}): pg_dumpall recreates it at that path on the source's host`,
    );
    expect(message).toContain('DROP TABLESPACE "Fast Disk"');
    // The typo is named, with the names that would have been right.
    expect(message).toMatch(
      /accept\.skipDatabases lists "clsoed", which is not a database of the source; the databases the copy cannot carry are "closed", "halfdropped"/,
    );
    // Configuration is not a refusal.
    expect(message).not.toMatch(/slot|ALTER SYSTEM|subscription/);
  });

  it('refuses a database the copy would carry anyway listed under accept.skipDatabases', async () => {
    const message = await preflightError({ accept: { skipDatabases: ['closed', 'halfdropped', 'shop'] } });
    expect(message).toContain(
      'accept.skipDatabases lists "shop", which the copy carries like any other database',
    );
  });

  it('accepts the listed losses with warnings, and warns about configuration the dump leaves behind', async () => {
    await sql(
      source,
      'postgres',
      'ALTER TABLE on_fast_disk SET TABLESPACE pg_default',
      'DROP TABLESPACE "Fast Disk"',
    );
    const result = await preflight(deps, input({ accept: { skipDatabases: ['closed', 'halfdropped'] } }));
    expect(result.warnings).toEqual(
      expect.arrayContaining([
        'database "closed" is not migrated (listed in accept.skipDatabases): it does not allow connections (ALLOW_CONNECTIONS false)',
        'database "halfdropped" is not migrated (listed in accept.skipDatabases): it is invalid (an interrupted DROP DATABASE left it)',
        expect.stringMatching(/^replication slot "standby_slot" \(physical\) is not carried/),
        expect.stringMatching(/^server settings made with ALTER SYSTEM .*: work_mem; /),
        expect.stringMatching(
          /^subscription "shop_feed" in database "shop" is restored disabled.*ALTER SUBSCRIPTION "shop_feed" ENABLE/,
        ),
      ]),
    );
    expect(result.warnings.join('\n')).not.toMatch(/database "(postgres|template1)"/);
    // A value in postgresql.auto.conf may be a secret (primary_conninfo): names only.
    expect(result.warnings.join('\n')).not.toContain('6MB');
  });
});

describe('the restore carries the properties of postgres and template1', () => {
  let dump: DumpResult;

  it('leaves them out of the dump (which is why they are carried by hand)', async () => {
    dump = await dumpSource(deps, input());
    const { readFile } = await import('node:fs/promises');
    const text = await readFile(dump.path, 'utf8');
    expect(text).not.toMatch(
      /COMMENT ON DATABASE (postgres|template1)|ALTER DATABASE (postgres|template1) SET/,
    );
    expect(text).not.toContain('closed');
    expect(text).toContain('CREATE SUBSCRIPTION shop_feed');
  });

  it('gives the target the same comment, settings, role settings, privileges, limit and owner', async () => {
    const before = await properties(target);
    expect(before).not.toEqual(await properties(source));
    await restoreTarget(deps, input(), dump);
    expect(await properties(target)).toEqual(await properties(source));
    // As a session sees them: the list stays two schemas and public, the custom value keeps its quotes.
    await withClient(target, 'postgres', async (c) => {
      expect((await c.query('SHOW search_path')).rows[0].search_path).toBe('app, "Other Schema", public');
      expect((await c.query('SHOW app.x')).rows[0]['app.x']).toBe('hello, "world"');
    });
  });

  it('converges again on a target that has drifted, and a retried restore gives the same target', async () => {
    await sql(
      target,
      'db',
      "COMMENT ON DATABASE postgres IS 'drifted'",
      'GRANT CREATE ON DATABASE template1 TO "Rep Role" WITH GRANT OPTION',
      "ALTER ROLE owner2 IN DATABASE postgres SET work_mem TO '1MB'",
      "ALTER DATABASE template1 SET app.y TO 'junk'",
      'ALTER DATABASE postgres CONNECTION LIMIT 3',
    );
    expect(await carryDatabaseProperties(source, target)).toEqual([]);
    expect(await properties(target)).toEqual(await properties(source));

    // A retry resets the target (dropping the restored subscription's database too) and restores again.
    await restoreTarget(deps, input(), dump);
    expect(await properties(target)).toEqual(await properties(source));
  });

  it("converges to an ACL where the owner gave up its own privileges, from a default ACL or another owner's", async () => {
    // template1 on the source: {=c/owner2,owner2=c/owner2}.
    await sql(
      source,
      'postgres',
      'REVOKE ALL ON DATABASE template1 FROM PUBLIC, app',
      'GRANT CONNECT ON DATABASE template1 TO PUBLIC',
      'REVOKE CREATE, TEMPORARY ON DATABASE template1 FROM owner2',
    );
    try {
      const acl = async (t: PgTarget) =>
        withClient(t, 'postgres', async (c) => {
          const { rows } = await c.query(
            `SELECT ARRAY(SELECT a::text FROM unnest(datacl) a ORDER BY 1) AS a FROM pg_database WHERE datname = 'template1'`,
          );
          return rows[0].a as string[];
        });
      expect(await acl(source)).toEqual(['=c/owner2', 'owner2=c/owner2']);
      // As a reset target has it: the default ACL.
      await sql(target, 'postgres', "UPDATE pg_database SET datacl = NULL WHERE datname = 'template1'");
      expect(await carryDatabaseProperties(source, target)).toEqual([]);
      expect(await acl(target)).toEqual(['=c/owner2', 'owner2=c/owner2']);
      // Another owner holding everything explicitly: ALTER ... OWNER TO moves its entries to owner2.
      await sql(
        target,
        'postgres',
        'ALTER DATABASE template1 OWNER TO app',
        'GRANT ALL ON DATABASE template1 TO app',
      );
      expect(await carryDatabaseProperties(source, target)).toEqual([]);
      expect(await acl(target)).toEqual(['=c/owner2', 'owner2=c/owner2']);
      expect(await properties(target)).toEqual(await properties(source));
    } finally {
      await sql(
        source,
        'postgres',
        'REVOKE CONNECT ON DATABASE template1 FROM PUBLIC',
        'GRANT TEMPORARY ON DATABASE template1 TO PUBLIC',
        'GRANT CONNECT ON DATABASE template1 TO app',
        'GRANT CREATE, TEMPORARY ON DATABASE template1 TO owner2',
      );
    }
  });

  it('reports a setting the target does not know like a restore error, which the plan may allow', async () => {
    // Renamed debug_parallel_query in PostgreSQL 16: the 17 target does not know it.
    await sql(source, 'postgres', 'ALTER DATABASE template1 SET force_parallel_mode TO on');
    try {
      const failure = await restoreTarget(deps, input(), dump).then(
        () => undefined,
        (e: unknown) => e as ApplicationFailure,
      );
      expect(failure?.type).toBe('UnexpectedRestoreErrors');
      expect(failure?.nonRetryable).toBe(true);
      expect(failure?.message).toContain('unrecognized configuration parameter "force_parallel_mode"');
      expect(failure?.message).toContain('carrying the properties of database "template1"');

      const allowed = 'unrecognized configuration parameter "force_parallel_mode"';
      const result = await restoreTarget(
        deps,
        input({ restore: { expectedErrors: [...platform.expectedRestoreErrors, allowed] } }),
        dump,
      );
      expect(result.expectedErrors.some((e) => e.includes(allowed))).toBe(true);
      const errors = await carryDatabaseProperties(source, target);
      expect(classifyRestoreErrors(errors, [allowed]).unexpected).toEqual([]);
    } finally {
      await sql(source, 'postgres', 'ALTER DATABASE template1 RESET force_parallel_mode');
    }
  });
});

describe('reading the source', () => {
  it('finds each kind of thing on the real source', async () => {
    const facts = await readSourceFacts(source);
    expect(facts.superuser).toBe(true);
    expect(facts.databases.find((d) => d.name === 'closed')).toMatchObject({ allowsConnections: false });
    expect(facts.databases.find((d) => d.name === 'halfdropped')).toMatchObject({ invalid: true });
    expect(facts.slots).toEqual([{ name: 'standby_slot', type: 'physical', database: null }]);
    expect(facts.subscriptions).toEqual([{ name: 'shop_feed', database: 'shop', enabled: false }]);
    expect(facts.alterSystem).toEqual(['work_mem']);
    expect(facts.securityLabels).toEqual([]);
  });
});

describe('judging what cannot be tested on a local server', () => {
  const base: SourceFacts = {
    major: 14,
    role: 'aptible',
    superuser: true,
    databases: [
      { name: 'template0', allowsConnections: false, invalid: false, canConnect: true },
      { name: 'db', allowsConnections: true, invalid: false, canConnect: true },
    ],
    tablespaces: [],
    slots: [],
    subscriptions: [],
    alterSystem: [],
    securityLabels: [],
  };
  const judge = (facts: Partial<SourceFacts>, skipDatabases: string[] = []) =>
    judgeFidelity({ ...base, ...facts }, { skipDatabases });

  it('passes a plain source without a word, template0 included', () => {
    expect(judge({})).toEqual({ refusals: [], warnings: [] });
    expect(judge({}, ['template0']).refusals).toEqual([
      expect.stringMatching(
        /lists "template0", which the copy carries like any other database; the copy can carry every database/,
      ),
    ]);
  });

  it('refuses an enabled subscription, and any subscription when the dump would not run as a superuser', () => {
    const subscriptions = [{ name: 'feed', database: 'db', enabled: true }];
    expect(judge({ subscriptions }).refusals).toEqual([
      expect.stringMatching(
        /subscription "feed" in database "db" is enabled: .*ALTER SUBSCRIPTION "feed" DISABLE/,
      ),
    ]);
    expect(judge({ subscriptions, superuser: false, role: 'ops' }).refusals).toEqual([
      expect.stringMatching(/leaves subscriptions out unless it runs as a superuser, and "ops" is not one/),
    ]);
  });

  it('refuses security labels and databases the role may not connect to', () => {
    const { refusals } = judge({
      securityLabels: [
        { provider: 'selinux', count: 3, database: 'db' },
        { provider: 'selinux', count: 1 },
      ],
      databases: [
        ...base.databases,
        { name: 'Private', allowsConnections: true, invalid: false, canConnect: false },
      ],
    });
    expect(refusals).toEqual([
      expect.stringMatching(
        /may not connect to database "Private".*GRANT CONNECT ON DATABASE "Private" TO "aptible"/,
      ),
      expect.stringMatching(/^3 security label\(s\) of provider "selinux" on objects of database "db"/),
      expect.stringMatching(/^1 security label\(s\) of provider "selinux" on shared objects/),
    ]);
  });

  it('refuses a source older than 12, whose copy the verification cannot prove', () => {
    expect(judge({ major: 11 }).refusals).toEqual([
      expect.stringMatching(
        /^the source runs PostgreSQL 11: .*prints floating-point values differently.*cannot prove the copy.*upgrade the source to 12/,
      ),
    ]);
    expect(judge({ major: 12 }).refusals).toEqual([]);
  });

  it('warns when the ALTER SYSTEM settings cannot be read', () => {
    expect(judge({ alterSystem: undefined }).warnings).toEqual([
      expect.stringMatching(/may not read the source's ALTER SYSTEM settings/),
    ]);
  });
});

describe('quoting the properties as pg_dump does', () => {
  it('splits list settings as the server stored them', () => {
    expect(splitGucList('app, "Other Schema", public')).toEqual(['app', 'Other Schema', 'public']);
    expect(splitGucList('"$user", ""')).toEqual(['$user', '']);
    expect(splitGucList('"a ""quoted"" one",b')).toEqual(['a "quoted" one', 'b']);
    expect(splitGucList('  ')).toEqual([]);
    expect(splitGucList('a,')).toBeUndefined();
    expect(splitGucList('"open')).toBeUndefined();
    expect(splitGucList('a b')).toBeUndefined();
  });

  it('writes each setting as a statement of literals', () => {
    expect(alterConfigCommand('ALTER DATABASE "x"', 'search_path=app, "Other Schema"')).toBe(
      `ALTER DATABASE "x" SET "search_path" TO 'app', 'Other Schema'`,
    );
    expect(alterConfigCommand('ALTER DATABASE "x"', "app.x=it's, \\here")).toBe(
      `ALTER DATABASE "x" SET "app.x" TO E'it''s, \\\\here'`,
    );
    expect(alterConfigCommand('ALTER DATABASE "x"', 'search_path=')).toBe(
      `ALTER DATABASE "x" SET "search_path" TO ''`,
    );
    expect(() => alterConfigCommand('ALTER DATABASE "x"', 'no equals sign')).toThrow(/name=value/);
    expect(sqlLiteral("a'b")).toBe("'a''b'");
  });

  it('spells out the default privileges when only the target has others', () => {
    const statements = propertyStatements(
      {
        name: 'postgres',
        owner: 'o',
        comment: null,
        connectionLimit: -1,
        acl: null,
        settings: [],
        roleSettings: [],
      },
      { roles: new Set(['o']), defaultAcl: false, grantees: ['x'], rolesWithSettings: ['x'] },
    );
    expect(statements).toEqual([
      'ALTER DATABASE "postgres" OWNER TO "o"',
      'COMMENT ON DATABASE "postgres" IS NULL',
      'ALTER DATABASE "postgres" WITH CONNECTION LIMIT -1',
      'ALTER DATABASE "postgres" RESET ALL',
      'ALTER ROLE "x" IN DATABASE "postgres" RESET ALL',
      'REVOKE ALL ON DATABASE "postgres" FROM PUBLIC',
      'REVOKE ALL ON DATABASE "postgres" FROM "o" CASCADE',
      'REVOKE ALL ON DATABASE "postgres" FROM "x" CASCADE',
      'GRANT CONNECT, TEMPORARY ON DATABASE "postgres" TO PUBLIC',
      'GRANT CREATE, CONNECT, TEMPORARY ON DATABASE "postgres" TO "o"',
    ]);
  });
});
