// Readiness of one source database for logical replication (see readiness.ts).
import type { Client } from 'pg';
import { quoteIdent } from '../connection';
import { notExtensionMember, userSchema } from '../verify/sql';
import { tableLabel } from './catalog';

export interface DatabaseFindings {
  problems: string[];
  warnings: string[];
  /** "db.schema.table" of every table and partitioned table, to check accept.replicaIdentityFull against. */
  names: string[];
}

interface TableFacts {
  schema: string;
  name: string;
  kind: 'r' | 'p';
  persistence: 'p' | 'u';
  /** key: a primary key; index: REPLICA IDENTITY USING INDEX; full; nothing: NOTHING; none: default, no key. */
  identity: 'key' | 'index' | 'full' | 'nothing' | 'none';
  /** "schema.table" of itself and the partitioned tables above it. */
  covered_by: string[];
}

// Every user table, its replica identity as it works (USING INDEX of a dropped index is no identity),
// and the partitioned tables it is a partition of (an entry naming one covers its partitions).
const TABLES = `
  WITH RECURSIVE t AS (
    SELECT c.oid, n.nspname, c.relname, c.relkind, c.relpersistence, c.relreplident
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE c.relkind IN ('r', 'p') AND c.relpersistence <> 't' AND ${userSchema('n')}
       AND ${notExtensionMember('pg_class', 'c.oid')}
  ), up AS (
    SELECT oid AS rel, oid AS above FROM t
    UNION ALL
    SELECT up.rel, i.inhparent FROM up
      JOIN pg_class pc ON pc.oid = up.above AND pc.relispartition
      JOIN pg_inherits i ON i.inhrelid = up.above
  )
  SELECT t.nspname AS schema, t.relname AS name, t.relkind AS kind, t.relpersistence AS persistence,
         CASE WHEN t.relreplident = 'f' THEN 'full'
              WHEN t.relreplident = 'n' THEN 'nothing'
              WHEN t.relreplident = 'i'
                   AND EXISTS (SELECT 1 FROM pg_index x WHERE x.indrelid = t.oid AND x.indisreplident) THEN 'index'
              WHEN t.relreplident = 'd'
                   AND EXISTS (SELECT 1 FROM pg_index x WHERE x.indrelid = t.oid AND x.indisprimary) THEN 'key'
              ELSE 'none' END AS identity,
         (SELECT array_agg(an.nspname || '.' || ac.relname) FROM up JOIN pg_class ac ON ac.oid = up.above
            JOIN pg_namespace an ON an.oid = ac.relnamespace WHERE up.rel = t.oid) AS covered_by
    FROM t
   ORDER BY t.nspname, t.relname`;

// Configuration tables of extensions (pg_extension_config_dump): the rows their condition selects are the
// user's, which pg_dump copies; the publication leaves extensions' tables out, so nothing would.
const EXTENSION_CONFIG = `
  SELECT x.extname AS extension, quote_ident(n.nspname) || '.' || quote_ident(c.relname) AS ident,
         n.nspname AS schema, c.relname AS name, coalesce(u.cond, '') AS cond
    FROM pg_extension x, unnest(x.extconfig, x.extcondition) AS u(cfg, cond)
    JOIN pg_class c ON c.oid = u.cfg JOIN pg_namespace n ON n.oid = c.relnamespace
   WHERE c.relkind = 'r'
   ORDER BY 2`;

export async function checkDatabase(
  c: Client,
  db: string,
  replicaIdentityFull: readonly string[],
): Promise<DatabaseFindings> {
  const problems: string[] = [];
  const warnings: string[] = [];
  const accepted = new Set(replicaIdentityFull);
  const { rows: tables } = await c.query<TableFacts>(TABLES);
  for (const t of tables) {
    const label = tableLabel(db, t.schema, t.name);
    if (t.kind !== 'r') continue;
    if (t.persistence === 'u') {
      problems.push(
        `${label} is UNLOGGED: logical replication does not carry its rows; make it logged ` +
          `(ALTER TABLE ${quoteIdent(t.schema)}.${quoteIdent(t.name)} SET LOGGED), or use method: dump`,
      );
      continue;
    }
    const optIn = t.covered_by.find((n) => accepted.has(`${db}.${n}`));
    if (t.identity === 'key' || t.identity === 'index' || t.identity === 'full') {
      if (optIn && t.identity !== 'full') {
        warnings.push(
          `${label} has a ${t.identity === 'key' ? 'primary key' : 'replica identity index'}, yet ` +
            `accept.replicaIdentityFull lists "${db}.${optIn}": it is set to REPLICA IDENTITY FULL all the same`,
        );
      }
      continue;
    }
    if (optIn) {
      warnings.push(
        `${label} is set to REPLICA IDENTITY FULL on the source and the target (accept.replicaIdentityFull): ` +
          'each UPDATE and DELETE on it writes the whole old row to the WAL, and the target finds the row by ' +
          'scanning the table, slow on a large one',
      );
      continue;
    }
    const why = t.identity === 'nothing' ? 'has REPLICA IDENTITY NOTHING' : 'has no primary key';
    problems.push(
      `${label} ${why}: once published, UPDATE and DELETE on it would fail on the source; add a primary key ` +
        `(or REPLICA IDENTITY USING INDEX on a unique index), list it under accept.replicaIdentityFull as ` +
        `"${db}.${t.schema}.${t.name}", or use method: dump`,
    );
  }

  const { rows: lo } = await c.query<{ n: number }>('SELECT count(*)::int AS n FROM pg_largeobject_metadata');
  if (lo[0].n > 0) {
    problems.push(
      `database ${quoteIdent(db)} holds ${lo[0].n} large object(s): logical replication does not carry them; ` +
        'use method: dump',
    );
  }

  const { rows: configs } = await c.query<{
    extension: string;
    ident: string;
    schema: string;
    name: string;
    cond: string;
  }>(EXTENSION_CONFIG);
  for (const cfg of configs) {
    // The condition is the extension script's own text (pg_extension_config_dump), as pg_dump uses it.
    const { rows } = await c.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM ONLY ${cfg.ident} ${cfg.cond}`,
    );
    if (rows[0].n === 0) continue;
    problems.push(
      `${tableLabel(db, cfg.schema, cfg.name)} (configuration of extension ${quoteIdent(cfg.extension)}) holds ` +
        `${rows[0].n} row(s) added after CREATE EXTENSION: logical replication does not carry an extension's ` +
        'tables; use method: dump',
    );
  }

  const { rows: mv } = await c.query<{ n: number; bytes: string }>(`
    SELECT count(*)::int AS n, coalesce(sum(pg_relation_size(c.oid)), 0)::text AS bytes
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE c.relkind = 'm' AND c.relispopulated AND ${userSchema('n')}
       AND ${notExtensionMember('pg_class', 'c.oid')}`);
  if (mv[0].n > 0) {
    warnings.push(
      `database ${quoteIdent(db)}: ${mv[0].n} materialized view(s) (${mv[0].bytes} bytes) are not replicated: ` +
        'they are refreshed on the target at cutover, which adds to the downtime',
    );
  }

  const names = tables.map((t) => `${db}.${t.schema}.${t.name}`);
  return { problems, warnings, names };
}
