// What `pg_dumpall | psql` does not carry from the source, found before any downtime. pg_dumpall is silent
// about most of it: a database that refuses connections is skipped, a tablespace is recreated with the
// source host's path, a replication slot or an ALTER SYSTEM setting is never dumped. Each finding is either
// a refusal (preflight stops and says what to do) or a warning (configuration the operator should redo on
// the target, or a loss the plan accepted explicitly). The properties of `postgres` and `template1`, which
// pg_dumpall leaves out too, are carried by database-properties.ts and need no finding here.
import type { Client } from 'pg';
import { type PgTarget, quoteIdent, withClient } from './connection';
import { FULL_COMPARE_MAJOR } from './verify/database';

export interface SourceDatabase {
  name: string;
  allowsConnections: boolean;
  /** datconnlimit = -2: an interrupted DROP DATABASE left it; nobody can connect to it. */
  invalid: boolean;
  /** Whether the role pg_dumpall runs as may connect to it. */
  canConnect: boolean;
}

export interface SecurityLabelCount {
  /** The database whose objects carry the labels; undefined for shared objects (roles, databases...). */
  database?: string;
  provider: string;
  count: number;
}

/** What the source holds that decides what a dump of it carries. Names and counts only: no secret. */
export interface SourceFacts {
  /** The source's major version. */
  major: number;
  role: string;
  superuser: boolean;
  databases: SourceDatabase[];
  tablespaces: { name: string; location: string }[];
  slots: { name: string; type: string; database: string | null }[];
  subscriptions: { name: string; database: string; enabled: boolean }[];
  /** Names of the settings in postgresql.auto.conf; undefined when this role may not read them. */
  alterSystem?: string[];
  securityLabels: SecurityLabelCount[];
}

export interface FidelityReport {
  /** Each a problem that stops preflight, saying what to do. */
  refusals: string[];
  warnings: string[];
}

export interface AcceptedLosses {
  skipDatabases: readonly string[];
}

/** Reads the source and judges what its dump would leave behind. */
export async function checkFidelity(source: PgTarget, accept: AcceptedLosses): Promise<FidelityReport> {
  return judgeFidelity(await readSourceFacts(source), accept);
}

const quoted = (name: string) => JSON.stringify(name);

/** The oldest source whose copy the verification can prove (see FULL_COMPARE_MAJOR in verify/database.ts). */
const PROVABLE_MAJOR = FULL_COMPARE_MAJOR;

/** Whether pg_dumpall skips a database without a word (template0 holds nothing of the source's own). */
function skippedByDump(db: SourceDatabase): boolean {
  return db.name !== 'template0' && (!db.allowsConnections || db.invalid);
}

export function judgeFidelity(facts: SourceFacts, accept: AcceptedLosses): FidelityReport {
  const refusals: string[] = [];
  const warnings: string[] = [];
  const accepted = new Set(accept.skipDatabases);

  if (facts.major < PROVABLE_MAJOR) {
    refusals.push(
      `the source runs PostgreSQL ${facts.major}: pgshift verifies a copy by comparing the rows' text on both ` +
        `sides, and before ${PROVABLE_MAJOR} a server prints floating-point values differently from the ` +
        `${PROVABLE_MAJOR}+ target, so it cannot prove the copy is complete; upgrade the source to ` +
        `${PROVABLE_MAJOR} or later first (or migrate it with another tool)`,
    );
  }

  for (const db of facts.databases.filter(skippedByDump)) {
    const why = db.invalid
      ? 'is invalid (an interrupted DROP DATABASE left it)'
      : 'does not allow connections (ALLOW_CONNECTIONS false)';
    if (accepted.has(db.name)) {
      warnings.push(
        `database ${quoted(db.name)} is not migrated (listed in accept.skipDatabases): it ${why}`,
      );
    } else if (db.invalid) {
      refusals.push(
        `database ${quoted(db.name)} ${why}, and pg_dumpall skips it without a word: finish dropping it on the ` +
          `source (DROP DATABASE ${quoteIdent(db.name)}), or list it under accept.skipDatabases to migrate without it`,
      );
    } else {
      refusals.push(
        `database ${quoted(db.name)} ${why}, and pg_dumpall skips it without a word: allow connections on the ` +
          `source for the migration (ALTER DATABASE ${quoteIdent(db.name)} WITH ALLOW_CONNECTIONS true), ` +
          'drop it if it is unused, or list it under accept.skipDatabases to migrate without it',
      );
    }
  }
  for (const name of accept.skipDatabases) {
    const db = facts.databases.find((d) => d.name === name);
    if (db && skippedByDump(db)) continue;
    const skippable = facts.databases.filter(skippedByDump).map((d) => quoted(d.name));
    const which = skippable.length
      ? `the databases the copy cannot carry are ${skippable.join(', ')}`
      : 'the copy can carry every database of the source';
    refusals.push(
      `accept.skipDatabases lists ${quoted(name)}, which ` +
        (db ? 'the copy carries like any other database' : 'is not a database of the source') +
        `; ${which}: correct or remove the entry, so that a typo cannot hide a loss`,
    );
  }

  for (const db of facts.databases) {
    if (skippedByDump(db) || db.name === 'template0' || db.canConnect) continue;
    refusals.push(
      `the role ${quoted(facts.role)} may not connect to database ${quoted(db.name)}, so pg_dumpall would fail on ` +
        `it during the downtime: GRANT CONNECT ON DATABASE ${quoteIdent(db.name)} TO ${quoteIdent(facts.role)} on the source`,
    );
  }

  for (const ts of facts.tablespaces) {
    refusals.push(
      `tablespace ${quoted(ts.name)} (${ts.location}): pg_dumpall recreates it at that path on the source's ` +
        'host, which the target cannot have; on the source, move what it holds to pg_default ' +
        '(ALTER TABLE/INDEX/MATERIALIZED VIEW ... SET TABLESPACE pg_default, ALTER DATABASE ... SET TABLESPACE ' +
        `pg_default) and drop it (DROP TABLESPACE ${quoteIdent(ts.name)})`,
    );
  }

  for (const sub of facts.subscriptions) {
    const where = `subscription ${quoted(sub.name)} in database ${quoted(sub.database)}`;
    if (!facts.superuser) {
      refusals.push(
        `${where}: pg_dump leaves subscriptions out unless it runs as a superuser, and ${quoted(facts.role)} is not ` +
          'one; run the migration with a superuser, or drop the subscription and recreate it on the target after the cutover',
      );
    } else if (sub.enabled) {
      refusals.push(
        `${where} is enabled: what it receives during the copy would never reach the target, where pg_dump ` +
          `recreates it disabled; disable it on the source before the migration (ALTER SUBSCRIPTION ${quoteIdent(sub.name)} ` +
          'DISABLE): its publisher keeps the changes in its slot, and you enable it on the target after the cutover',
      );
    } else {
      warnings.push(
        `${where} is restored disabled, as it is on the source; after the cutover enable it on the target ` +
          `(ALTER SUBSCRIPTION ${quoteIdent(sub.name)} ENABLE), never on both: they share the publisher's slot`,
      );
    }
  }

  for (const label of facts.securityLabels) {
    const on =
      label.database === undefined ? 'shared objects' : `objects of database ${quoted(label.database)}`;
    refusals.push(
      `${label.count} security label(s) of provider ${quoted(label.provider)} on ${on}: the restore fails on ` +
        'each unless the target loads that label provider; remove them on the source ' +
        `(SECURITY LABEL FOR ${quoteIdent(label.provider)} ON ... IS NULL) if the target platform has none`,
    );
  }

  for (const slot of facts.slots) {
    const of = slot.database ? ` on database ${quoted(slot.database)}` : '';
    warnings.push(
      `replication slot ${quoted(slot.name)} (${slot.type}${of}) is not carried: whatever reads it (a replica, a ` +
        'change-data-capture tool) keeps following the source; give it a slot on the target after the cutover',
    );
  }

  if (facts.alterSystem === undefined) {
    warnings.push(
      `the role ${quoted(facts.role)} may not read the source's ALTER SYSTEM settings (pg_file_settings): none ` +
        'would be carried; compare the server settings of source and target by hand',
    );
  } else if (facts.alterSystem.length > 0) {
    // Names only: a value may hold a secret (primary_conninfo carries a password).
    const names = [...new Set(facts.alterSystem)].join(', ');
    warnings.push(
      `server settings made with ALTER SYSTEM on the source are not carried (the platform configures the ` +
        `target): ${names}; read their values on the source (SELECT name, setting FROM pg_file_settings) and ` +
        'set on the target those it needs',
    );
  }
  return { refusals, warnings };
}

/** The catalog facts judgeFidelity needs; one connection for the server, one per database for its labels. */
export async function readSourceFacts(source: PgTarget): Promise<SourceFacts> {
  const facts = await withClient(source, source.database, async (c) => {
    const major = Math.floor(
      Number(await one(c, `SELECT current_setting('server_version_num') AS v`)) / 10000,
    );
    const { rows: who } = await c.query<{ role: string; superuser: boolean }>(
      `SELECT current_user AS role, rolsuper AS superuser FROM pg_roles WHERE rolname = current_user`,
    );
    const { rows: databases } = await c.query<SourceDatabase>(
      `SELECT datname AS name, datallowconn AS "allowsConnections", datconnlimit = -2 AS invalid,
              has_database_privilege(oid, 'CONNECT') AS "canConnect"
         FROM pg_database ORDER BY datname`,
    );
    const { rows: tablespaces } = await c.query<{ name: string; location: string }>(
      `SELECT spcname AS name, pg_tablespace_location(oid) AS location
         FROM pg_tablespace WHERE spcname NOT IN ('pg_default', 'pg_global') ORDER BY spcname`,
    );
    // A temporary slot lives and dies with its session (a running pg_basebackup): nothing to carry.
    const { rows: slots } = await c.query<{ name: string; type: string; database: string | null }>(
      `SELECT slot_name AS name, slot_type AS type, database FROM pg_replication_slots
        ${major >= 10 ? 'WHERE NOT temporary' : ''} ORDER BY slot_name`,
    );
    const subscriptions =
      major >= 10
        ? (
            await c.query<{ name: string; database: string; enabled: boolean }>(
              `SELECT s.subname AS name, d.datname AS database, s.subenabled AS enabled
                 FROM pg_subscription s JOIN pg_database d ON d.oid = s.subdbid ORDER BY d.datname, s.subname`,
            )
          ).rows
        : [];
    return {
      major,
      role: who[0].role,
      superuser: who[0].superuser,
      databases,
      tablespaces,
      slots,
      subscriptions,
      alterSystem: await alterSystemSettings(c),
      securityLabels: await labelCounts(c, 'pg_shseclabel'),
    };
  });
  for (const db of facts.databases) {
    if (!db.allowsConnections || db.invalid || !db.canConnect) continue;
    const labels = await withClient(source, db.name, (c) => labelCounts(c, 'pg_seclabel'));
    facts.securityLabels.push(...labels.map((l) => ({ ...l, database: db.name })));
  }
  return facts;
}

async function one(c: Client, sql: string): Promise<string> {
  const { rows } = await c.query<{ v: string }>(sql);
  return rows[0].v;
}

const INSUFFICIENT_PRIVILEGE = '42501';

async function alterSystemSettings(c: Client): Promise<SourceFacts['alterSystem']> {
  try {
    const { rows } = await c.query<{ name: string }>(
      `SELECT name FROM pg_file_settings WHERE sourcefile ~ '(^|/)postgresql\\.auto\\.conf$' ORDER BY seqno`,
    );
    return rows.map((r) => r.name);
  } catch (err) {
    if ((err as { code?: string }).code === INSUFFICIENT_PRIVILEGE) return undefined;
    throw err;
  }
}

async function labelCounts(
  c: Client,
  catalog: 'pg_seclabel' | 'pg_shseclabel',
): Promise<SecurityLabelCount[]> {
  const { rows } = await c.query<{ provider: string; count: number }>(
    `SELECT provider, count(*)::int AS count FROM ${catalog} GROUP BY provider ORDER BY provider`,
  );
  return rows;
}
