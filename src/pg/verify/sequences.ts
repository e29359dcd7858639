import type { Client } from 'pg';
import type { SequenceReport } from '../../activities/contract';
import { notExtensionMember, userSchema } from './sql';

// A sequence's definition (type, bounds, owner...) is in the schema fingerprint; here, where it stands.
const SEQUENCES = `
  SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname) AS ident, n.nspname AS schema, c.relname AS name
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
   WHERE c.relkind = 'S' AND c.relpersistence <> 't' AND ${userSchema('n')}
     AND ${notExtensionMember('pg_class', 'c.oid')}
   ORDER BY 1`;

interface Sequence {
  ident: string;
  schema: string;
  name: string;
}

async function values(client: Client): Promise<Map<string, Sequence & { value: string }>> {
  const { rows } = await client.query<Sequence>(SEQUENCES);
  const out = new Map<string, Sequence & { value: string }>();
  for (const seq of rows) {
    const { rows: v } = await client.query<{ v: string; called: boolean }>(
      `SELECT last_value::text AS v, is_called AS called FROM ${seq.ident}`,
    );
    // last_value alone is ambiguous: setval(s, 1, false) and one nextval() both show 1.
    out.set(seq.ident, { ...seq, value: v[0].called ? v[0].v : `${v[0].v} (not yet used)` });
  }
  return out;
}

/** Where each sequence stands on both sides; a sequence missing on the target has a null value there. */
export async function compareSequenceValues(
  source: Client,
  target: Client,
): Promise<{ ident: string; report: SequenceReport }[]> {
  const [s, t] = await Promise.all([values(source), values(target)]);
  return [...s.values()].map((seq) => {
    const targetValue = t.get(seq.ident)?.value ?? null;
    const report = {
      schema: seq.schema,
      name: seq.name,
      sourceValue: seq.value,
      targetValue,
      match: seq.value === targetValue,
    };
    return { ident: seq.ident, report };
  });
}
