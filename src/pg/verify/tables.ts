import type { Client } from 'pg';
import type { TableReport } from '../../activities/contract';
import { notExtensionMember, userSchema } from './sql';

/**
 * What is read to compare a database's rows: each table on its own (FROM ONLY: inheritance children are
 * units of their own), each partition where partitioning maps rows the same way on both servers, a whole
 * partition tree at its root where any level is HASH-partitioned (hash routing of an enum, for one, depends
 * on OIDs that differ after a restore: the same rows land in other leaves), and populated materialized views.
 * Unlogged tables are included. Not read: foreign tables (another server's data), tables an extension
 * created (its script fills them), temporary tables (another session's).
 */
export interface Unit {
  /** Schema-qualified, quoted as in SQL. */
  ident: string;
  schema: string;
  name: string;
  kind: 'table' | 'partition tree' | 'matview';
  /** Matviews: whether it holds rows (REFRESH ran) or is WITH NO DATA. */
  populated: boolean;
  /** A hash-partitioned tree with a foreign partition: reading the root would read the other server. */
  foreign: boolean;
  /** The row expression, columns by name so a reordered column does not change a row's text. */
  row: string;
  bytes: number;
}

// Before 12 there is no pg_partition_root: every plain table and partition is read on its own.
const UNITS_BEFORE_12 = `
  SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname) AS ident, n.nspname AS schema, c.relname AS name,
         CASE WHEN c.relkind = 'm' THEN 'matview' ELSE 'table' END AS kind, c.relispopulated AS populated,
         false AS foreign, 'ROW(r.*)' AS row, pg_relation_size(c.oid)::float8 AS bytes
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
   WHERE c.relkind IN ('r', 'm') AND c.relpersistence <> 't' AND ${userSchema('n')}
     AND ${notExtensionMember('pg_class', 'c.oid')}
   ORDER BY 1`;

function unitsSql(major: number): string {
  if (major < 12) return UNITS_BEFORE_12;
  return `
  WITH rel AS (
    SELECT c.oid, c.relkind, c.relispartition, c.relispopulated, n.nspname, c.relname
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE c.relkind IN ('r', 'p', 'm') AND c.relpersistence <> 't' AND ${userSchema('n')}
       AND ${notExtensionMember('pg_class', 'c.oid')}
  ), hashed AS (
    SELECT r.oid FROM rel r
     WHERE r.relkind = 'p' AND NOT r.relispartition
       AND EXISTS (SELECT 1 FROM pg_partition_tree(r.oid) t JOIN pg_partitioned_table p ON p.partrelid = t.relid
                    WHERE p.partstrat = 'h')
  )
  SELECT quote_ident(r.nspname) || '.' || quote_ident(r.relname) AS ident, r.nspname AS schema, r.relname AS name,
         CASE WHEN r.relkind = 'm' THEN 'matview' WHEN r.relkind = 'p' THEN 'partition tree' ELSE 'table' END AS kind,
         r.relispopulated AS populated,
         (r.relkind = 'p' AND EXISTS (SELECT 1 FROM pg_partition_tree(r.oid) t JOIN pg_class f ON f.oid = t.relid
                                       WHERE f.relkind = 'f')) AS foreign,
         'ROW(' || coalesce((SELECT string_agg('r.' || quote_ident(a.attname), ', ' ORDER BY a.attname COLLATE "C")
                               FROM pg_attribute a
                              WHERE a.attrelid = r.oid AND a.attnum > 0 AND NOT a.attisdropped), '') || ')' AS row,
         (CASE WHEN r.relkind = 'p' THEN (SELECT sum(pg_relation_size(t.relid)) FROM pg_partition_tree(r.oid) t)
               ELSE pg_relation_size(r.oid) END)::float8 AS bytes
    FROM rel r
   WHERE r.relkind = 'm'
      OR (r.relkind = 'r' AND (NOT r.relispartition OR pg_partition_root(r.oid) NOT IN (SELECT oid FROM hashed)))
      OR r.oid IN (SELECT oid FROM hashed)
   ORDER BY 1`;
}

export async function listUnits(client: Client, major: number): Promise<Unit[]> {
  const { rows } = await client.query<Unit>(unitsSql(major));
  return rows.map((r) => ({ ...r, bytes: Number(r.bytes) }));
}

export interface Checksum {
  rows: number;
  /** Sum of the rows' 64-bit hashes: the same multiset of rows gives the same sum, in any order. */
  sum: string;
}

/**
 * A unit's rows, counted and hashed inside the server: each row's text (output settings fixed, see
 * session.ts) hashed with hashtextextended, summed as numeric (no overflow), so only one row comes back
 * however large the table is. 64 bits per row: a changed row goes unseen with odds of 2^-64.
 */
export async function checksum(client: Client, unit: Unit): Promise<Checksum> {
  const from = unit.kind === 'table' ? `ONLY ${unit.ident}` : unit.ident;
  const { rows } = await client.query<{ n: string; h: string }>(
    `SELECT count(*)::text AS n, coalesce(sum(hashtextextended(${unit.row}::text COLLATE "C", 0)), 0)::text AS h
       FROM ${from} r`,
  );
  return { rows: Number(rows[0].n), sum: rows[0].h };
}

/** Counts only, for servers whose row text cannot be compared (see canChecksum). */
export async function countRows(client: Client, unit: Unit): Promise<Checksum> {
  const from = unit.kind === 'table' ? `ONLY ${unit.ident}` : unit.ident;
  const { rows } = await client.query<{ n: string }>(`SELECT count(*)::text AS n FROM ${from} r`);
  return { rows: Number(rows[0].n), sum: '' };
}

export function tableReport(unit: Unit, source: Checksum, target: Checksum | undefined): TableReport {
  const entry: TableReport = {
    schema: unit.schema,
    name: unit.name,
    sourceRows: source.rows,
    targetRows: target?.rows ?? 0,
    match: target !== undefined && source.rows === target.rows && source.sum === target.sum,
  };
  if (unit.kind !== 'table') entry.kind = unit.kind;
  return entry;
}
