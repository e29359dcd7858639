// What logical replication does not carry but the cutover must: sequences' positions, and the contents of
// materialized views (the schema copy leaves them unpopulated, or populated from empty tables).
import type { Client } from 'pg';
import { type PgTarget, withClient } from '../connection';
import { notExtensionMember, userSchema } from '../verify/sql';

// Sequences of the user's, as the verification compares them (src/pg/verify/sequences.ts).
const SEQUENCES = `
  SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname) AS ident
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
   WHERE c.relkind = 'S' AND c.relpersistence <> 't' AND ${userSchema('n')}
     AND ${notExtensionMember('pg_class', 'c.oid')}
   ORDER BY 1`;

const MATVIEWS = `
  SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname) AS ident, c.relispopulated AS populated
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
   WHERE c.relkind = 'm' AND ${userSchema('n')} AND ${notExtensionMember('pg_class', 'c.oid')}
   ORDER BY c.oid`;

/** Sequences read (or set) in one statement each, so thousands of them stay within the downtime. */
const BATCH = 200;

interface Position {
  ident: string;
  value: string;
  called: boolean;
}

/**
 * Sets every sequence of each database on the target to the source's (last_value, is_called), and makes
 * each materialized view on the target populated as on the source (REFRESH, in the target's creation
 * order, which puts a view after the views it reads). Returns the number of sequences set. A sequence or
 * view missing on the target is left to the schema check and the verification, which name it.
 */
export async function copySequences(
  source: PgTarget,
  target: PgTarget,
  databases: readonly string[],
): Promise<number> {
  let count = 0;
  for (const db of databases) {
    const [positions, sourceViews] = await withClient(
      source,
      db,
      async (c) =>
        [
          await readPositions(c),
          new Map(
            (await c.query<{ ident: string; populated: boolean }>(MATVIEWS)).rows.map((r) => [
              r.ident,
              r.populated,
            ]),
          ),
        ] as const,
    );
    count += await withClient(target, db, async (c) => {
      const present = new Set((await c.query<{ ident: string }>(SEQUENCES)).rows.map((r) => r.ident));
      const toSet = positions.filter((p) => present.has(p.ident));
      for (let i = 0; i < toSet.length; i += BATCH) {
        const batch = toSet.slice(i, i + BATCH);
        const params: unknown[] = [];
        const calls = batch.map((p) => {
          params.push(p.ident, p.value, p.called);
          const n = params.length;
          return `setval($${n - 2}::regclass, $${n - 1}::bigint, $${n})`;
        });
        await c.query(`SELECT ${calls.join(', ')}`, params);
      }
      const { rows: views } = await c.query<{ ident: string; populated: boolean }>(MATVIEWS);
      for (const v of views) {
        const populated = sourceViews.get(v.ident);
        if (populated === undefined) continue;
        if (populated) await c.query(`REFRESH MATERIALIZED VIEW ${v.ident}`);
        else if (v.populated) await c.query(`REFRESH MATERIALIZED VIEW ${v.ident} WITH NO DATA`);
      }
      return toSet.length;
    });
  }
  return count;
}

async function readPositions(c: Client): Promise<Position[]> {
  const idents = (await c.query<{ ident: string }>(SEQUENCES)).rows.map((r) => r.ident);
  const out: Position[] = [];
  for (let i = 0; i < idents.length; i += BATCH) {
    const batch = idents.slice(i, i + BATCH);
    // The identifiers come quoted from quote_ident.
    const union = batch
      .map((ident, k) => `SELECT ${k} AS k, last_value::text AS value, is_called AS called FROM ${ident}`)
      .join(' UNION ALL ');
    const { rows } = await c.query<{ k: number; value: string; called: boolean }>(union);
    for (const r of rows) out.push({ ident: batch[r.k], value: r.value, called: r.called });
  }
  return out;
}
