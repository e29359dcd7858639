// Preflight of method logical, on the source only: what native logical replication cannot carry or would
// break, every problem at once, each naming the object and what to do. Creates nothing.
import type { Client } from 'pg';
import { type PgTarget, quoteIdent, withClient } from '../connection';
import { dbLabel } from '../verify/report';
import { notExtensionMember, userSchema } from '../verify/sql';
import { serverMajor, tableLabel } from './catalog';
import { checkDatabase, type DatabaseFindings } from './readiness-database';

export interface LogicalReadiness {
  /** Refusals, each naming the object and what to do (e.g. "use method: dump"). */
  problems: string[];
  warnings: string[];
  /** The databases that will be replicated: every connectable one but template0, template1 and the skipped. */
  databases: string[];
  /**
   * Databases whose schema is copied like the others' but which are not replicated: template1 (a
   * subscription in it would block CREATE DATABASE on the target), when it holds no rows.
   */
  schemaOnly?: string[];
}

/** Table-sync workers hold a slot and a WAL sender each while they copy; the target runs two at once. */
export const SYNC_HEADROOM = 2;
const MIN_MAJOR = 10;

interface ServerFacts {
  major: number;
  wal_level: string;
  max_slots: number;
  used_slots: number;
  max_senders: number;
  senders: number;
  rolsuper: boolean;
  rolreplication: boolean;
}

export async function checkLogicalReadiness(
  source: PgTarget,
  opts: { skipDatabases: readonly string[]; replicaIdentityFull: readonly string[] },
): Promise<LogicalReadiness> {
  const problems: string[] = [];
  const warnings: string[] = [];
  const databases: string[] = [];
  const schemaOnly: string[] = [];
  const { server, all } = await withClient(source, source.database, async (c) => ({
    server: await serverFacts(c),
    all: (
      await c.query<{ datname: string; datallowconn: boolean }>(
        `SELECT datname, datallowconn FROM pg_database WHERE datname <> 'template0' ORDER BY datname`,
      )
    ).rows,
  }));
  if (server.major < MIN_MAJOR) {
    problems.push(
      `the source runs PostgreSQL ${server.major}: logical replication needs ${MIN_MAJOR} or later; use method: dump`,
    );
    return { problems, warnings, databases };
  }
  if (server.wal_level !== 'logical') {
    problems.push(
      `the source's wal_level is ${server.wal_level}: logical replication needs logical; set wal_level = logical ` +
        '(ALTER SYSTEM SET wal_level = logical) and restart the server, or use method: dump',
    );
  }
  if (!server.rolsuper && !server.rolreplication) {
    problems.push(
      `the source's user ${quoteIdent(source.user)} is neither a superuser nor has REPLICATION: the target's ` +
        'subscriptions connect as it; use a superuser, or use method: dump',
    );
  }

  const findings: DatabaseFindings[] = [];
  for (const { datname: db, datallowconn } of all) {
    if (opts.skipDatabases.includes(db)) continue;
    if (!datallowconn) {
      problems.push(
        `database ${quoteIdent(db)} does not allow connections (ALLOW_CONNECTIONS false): it cannot be replicated; ` +
          `allow connections for the migration (ALTER DATABASE ${quoteIdent(db)} WITH ALLOW_CONNECTIONS true), ` +
          'or list it under accept.skipDatabases to migrate without it',
      );
      continue;
    }
    if (db === 'template1') {
      const rows = await withClient(source, db, tablesWithRows);
      if (rows.length) {
        problems.push(
          `template1 holds tables with rows (${rows.map((t) => tableLabel(db, t.schema, t.name)).join(', ')}): ` +
            'logical replication cannot carry template1 (a subscription in it would block CREATE DATABASE on ' +
            'the target); move the rows to another database, or use method: dump',
        );
      } else schemaOnly.push(db);
      continue;
    }
    databases.push(db);
    findings.push(await withClient(source, db, (c) => checkDatabase(c, db, opts.replicaIdentityFull)));
  }
  for (const f of findings) {
    problems.push(...f.problems);
    warnings.push(...f.warnings);
  }

  // Every entry must name a table of a replicated database: a typo must not hide an outage.
  const named = new Set(findings.flatMap((f) => f.names));
  for (const entry of opts.replicaIdentityFull) {
    if (named.has(entry)) continue;
    problems.push(
      `accept.replicaIdentityFull lists "${entry}", which names no table of a replicated database ` +
        `(${databases.map(dbLabel).join(', ') || 'none'}; the form is database.schema.table): correct or remove it`,
    );
  }

  const need = databases.length + SYNC_HEADROOM;
  const freeSlots = server.max_slots - server.used_slots;
  if (freeSlots < need) {
    problems.push(
      `the source has ${freeSlots} replication slot(s) free (max_replication_slots = ${server.max_slots}, ` +
        `${server.used_slots} in use); method logical needs ${need} (one per database, ${databases.length}, and ` +
        `${SYNC_HEADROOM} for the initial copy): set max_replication_slots to at least ` +
        `${server.used_slots + need} and restart the server`,
    );
  }
  const freeSenders = server.max_senders - server.senders;
  if (freeSenders < need) {
    problems.push(
      `the source has ${freeSenders} WAL sender(s) free (max_wal_senders = ${server.max_senders}, ` +
        `${server.senders} running); method logical needs ${need} (one per database, ${databases.length}, and ` +
        `${SYNC_HEADROOM} for the initial copy): set max_wal_senders to at least ${server.senders + need} and ` +
        'restart the server',
    );
  }
  return { problems, warnings, databases, schemaOnly };
}

/**
 * Whether the target can run a subscription per database and the initial copy's table-sync workers at
 * once: the refusal, saying what to set, or undefined. Too few workers would leave a subscription waiting
 * for one without any error.
 */
export async function subscriberWorkersProblem(
  target: PgTarget,
  databases: number,
): Promise<string | undefined> {
  const { rows } = await withClient(target, target.database, (c) =>
    c.query<{ logical: number; processes: number }>(
      `SELECT current_setting('max_logical_replication_workers')::int AS logical,
              current_setting('max_worker_processes')::int AS processes`,
    ),
  );
  const { logical, processes } = rows[0];
  // The launcher is a worker process of its own, and parallel queries and extensions take others.
  const needLogical = databases + SYNC_HEADROOM;
  const needProcesses = needLogical + 1 + 2;
  if (logical >= needLogical && processes >= needProcesses) return undefined;
  return (
    `the target cannot run the ${databases} subscription(s) and the initial copy's ${SYNC_HEADROOM} table-sync ` +
    `workers at once (max_logical_replication_workers = ${logical}, max_worker_processes = ${processes}): set ` +
    `max_logical_replication_workers to at least ${needLogical} and max_worker_processes to at least ` +
    `${Math.max(processes, needProcesses)} on the target and restart it, then migrate again`
  );
}

/**
 * The databases checkLogicalReadiness replicates, without its checks: one query, for the steps inside the
 * downtime that only need the list (a source that passed preflight).
 */
export async function replicatedDatabaseNames(
  source: PgTarget,
  opts: { skipDatabases: readonly string[] },
): Promise<string[]> {
  return withClient(source, source.database, async (c) =>
    (
      await c.query<{ datname: string }>(
        `SELECT datname FROM pg_database
          WHERE datallowconn AND datname NOT IN ('template0', 'template1') AND NOT datname = ANY ($1)
          ORDER BY datname`,
        [opts.skipDatabases],
      )
    ).rows.map((r) => r.datname),
  );
}

async function serverFacts(c: Client): Promise<ServerFacts> {
  const major = await serverMajor(c);
  if (major < MIN_MAJOR) return { major } as ServerFacts;
  const { rows } = await c.query<ServerFacts>(`
    SELECT current_setting('wal_level') AS wal_level,
           current_setting('max_replication_slots')::int AS max_slots,
           (SELECT count(*) FROM pg_replication_slots)::int AS used_slots,
           current_setting('max_wal_senders')::int AS max_senders,
           (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'walsender')::int AS senders,
           r.rolsuper, r.rolreplication
      FROM pg_roles r WHERE r.rolname = current_user`);
  return { ...rows[0], major };
}

/** User tables of a database that hold at least one row. */
async function tablesWithRows(c: Client): Promise<{ schema: string; name: string }[]> {
  const { rows } = await c.query<{ ident: string; schema: string; name: string }>(`
    SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname) AS ident, n.nspname AS schema, c.relname AS name
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE c.relkind = 'r' AND c.relpersistence <> 't' AND ${userSchema('n')}
       AND ${notExtensionMember('pg_class', 'c.oid')}
     ORDER BY 1`);
  const out: { schema: string; name: string }[] = [];
  for (const t of rows) {
    const { rows: r } = await c.query<{ any: boolean }>(
      `SELECT EXISTS (SELECT 1 FROM ONLY ${t.ident}) AS any`,
    );
    if (r[0].any) out.push(t);
  }
  return out;
}
