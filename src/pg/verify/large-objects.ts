import type { Client } from 'pg';
import { quoteIdent } from '../connection';
import type { ReportBuilder } from './report';

/**
 * How the contents of large objects are read. `whole`: lo_get reads each object at once (fast, but an object
 * over 1 GB fails with 54000); `chunked`: 1 MiB at a time, hashed chunk by chunk; `none`: the verifying role
 * may not read some of them (42501), so only their OIDs, owners and privileges are compared. Both sides are
 * always read the same way, so their hashes are comparable.
 */
type ContentMode = 'whole' | 'chunked' | 'none';

const CHUNK = 1024 * 1024;
const PROGRAM_LIMIT_EXCEEDED = '54000';
const INSUFFICIENT_PRIVILEGE = '42501';

const CONTENT: Record<ContentMode, string> = {
  whole: 'md5(lo_get(m.oid))',
  // Until a short chunk (an empty one when the size is a multiple of the chunk); the md5 of the chunks' md5s.
  chunked: `(WITH RECURSIVE c(off, h, n) AS (
               SELECT 0::bigint, md5(x), length(x) FROM lo_get(m.oid, 0, ${CHUNK}) x
               UNION ALL
               SELECT c.off + ${CHUNK}, md5(x), length(x) FROM c, lo_get(m.oid, c.off + ${CHUNK}, ${CHUNK}) x
                WHERE c.n = ${CHUNK})
             SELECT md5(string_agg(h, '' ORDER BY off)) FROM c)`,
  none: "''",
};

/** One line per large object: its owner, its privileges and a hash of its contents. */
function perObject(mode: ContentMode): string {
  return `
  SELECT m.oid::text AS oid, pg_get_userbyid(m.lomowner) AS owner,
         (SELECT coalesce(string_agg(a::text, ',' ORDER BY a::text COLLATE "C"), '')
            FROM unnest(coalesce(m.lomacl, acldefault('L', m.lomowner))) a) AS privileges,
         ${CONTENT[mode]} AS content
    FROM pg_largeobject_metadata m`;
}

interface LargeObject {
  oid: string;
  owner: string;
  privileges: string;
  content: string;
}

const BATCH = 1000;
/** Objects named in mismatches; the rest are counted. */
const NAMED = 20;

/**
 * Compares large objects: the summary (count and a sum of per-object hashes) first, and only when it
 * differs a walk of both sides in OID order, a batch at a time, naming the objects that differ. An object
 * too big for lo_get is read in chunks; objects the role may not read still have their OIDs, owners and
 * privileges compared, and the report is not ok, naming the grant that would let it compare their
 * contents. Any other error (a lost connection, a killed backend) goes on, for the activity to retry.
 */
export async function compareLargeObjects(
  source: Client,
  target: Client,
  where: string,
  report: ReportBuilder,
): Promise<void> {
  let mode: ContentMode = 'whole';
  let summaries: string[];
  const denied = new Map<string, string>();
  for (;;) {
    const outcomes = await Promise.allSettled([summary(source, mode), summary(target, mode)]);
    const failed = outcomes.flatMap((o, i) => (o.status === 'rejected' ? [{ side: i, err: o.reason }] : []));
    if (!failed.length) {
      summaries = outcomes.map((o) => (o as PromiseFulfilledResult<string>).value);
      break;
    }
    const code = (err: unknown) => (err as { code?: string }).code;
    const other = failed.find(
      (f) => ![PROGRAM_LIMIT_EXCEEDED, INSUFFICIENT_PRIVILEGE].includes(code(f.err)!),
    );
    if (other || mode === 'none') throw (other ?? failed[0]).err;
    for (const f of failed.filter((f) => code(f.err) === INSUFFICIENT_PRIVILEGE)) {
      const client = f.side === 0 ? source : target;
      const role = (await client.query<{ r: string }>('SELECT current_user AS r')).rows[0].r;
      denied.set(f.side === 0 ? 'source' : 'target', role);
    }
    mode = denied.size ? 'none' : 'chunked';
  }
  for (const [side, role] of denied) {
    // Not a loss found, but not a proof either: a mismatch, so the run is not ok, outside the data classes,
    // so the failure does not blame writers for it.
    report.mismatch(
      `${where}: large objects: contents not verified: the role ${JSON.stringify(role)} may not read some of ` +
        `them on the ${side} (their OIDs, owners and privileges were compared); verify as a superuser, or ` +
        `GRANT SELECT ON LARGE OBJECT <oid> TO ${quoteIdent(role)} for each`,
    );
  }
  if (summaries[0] === summaries[1]) {
    report.comparedAlike('large objects', Number(summaries[0].split(' ')[0]));
    return;
  }
  await walk(source, target, where, mode, report);
}

/**
 * The savepoint keeps the transaction usable after the errors compareLargeObjects handles; after any other
 * the transaction (or the connection) is gone, and the error goes on as it is.
 */
async function summary(client: Client, mode: ContentMode): Promise<string> {
  await client.query('SAVEPOINT pgshift_lo');
  let rows: { s: string }[];
  try {
    // ROW(...)::text keeps the fields apart: oid 16385 and owner "1x" do not hash as 163851 and "x".
    ({ rows } = await client.query<{ s: string }>(
      `SELECT count(*) || ' ' || coalesce(sum(hashtextextended(ROW(oid, owner, privileges, content)::text, 0)), 0) AS s
         FROM (${perObject(mode)}) x`,
    ));
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code === PROGRAM_LIMIT_EXCEEDED || code === INSUFFICIENT_PRIVILEGE) {
      await client.query('ROLLBACK TO SAVEPOINT pgshift_lo');
    }
    throw err;
  }
  await client.query('RELEASE SAVEPOINT pgshift_lo');
  return rows[0].s;
}

/** Reads a cursor a batch at a time. */
class CursorReader {
  private rows: LargeObject[] = [];
  private next = 0;
  private done = false;

  constructor(private readonly client: Client) {}

  async peek(): Promise<LargeObject | undefined> {
    if (this.next >= this.rows.length && !this.done) {
      this.rows = (await this.client.query<LargeObject>(`FETCH ${BATCH} FROM pgshift_lo`)).rows;
      this.next = 0;
      this.done = this.rows.length === 0;
    }
    return this.rows[this.next];
  }

  advance(): void {
    this.next++;
  }
}

async function walk(
  source: Client,
  target: Client,
  where: string,
  mode: ContentMode,
  report: ReportBuilder,
): Promise<void> {
  await Promise.all(
    [source, target].map((c) => c.query(`DECLARE pgshift_lo CURSOR FOR ${perObject(mode)} ORDER BY m.oid`)),
  );
  const s = new CursorReader(source);
  const t = new CursorReader(target);
  let named = 0;
  let unnamed = 0;
  const differs = (text: string) => {
    if (named++ < NAMED) report.compared('large objects', `${where}: large object ${text}`);
    else {
      unnamed++;
      report.countMismatch('large objects');
    }
  };
  for (;;) {
    const [a, b] = await Promise.all([s.peek(), t.peek()]);
    if (!a && !b) break;
    if (a && (!b || BigInt(a.oid) < BigInt(b.oid))) {
      differs(`${a.oid}: missing on target`);
      s.advance();
    } else if (!a || BigInt(b!.oid) < BigInt(a.oid)) {
      differs(`${b!.oid}: on the target only`);
      t.advance();
    } else {
      const problems = [
        a.owner !== b!.owner ? `owner differs (source ${a.owner}, target ${b!.owner})` : '',
        a.privileges !== b!.privileges ? 'privileges differ' : '',
        a.content !== b!.content ? 'content differs' : '',
      ].filter(Boolean);
      if (problems.length) differs(`${a.oid}: ${problems.join('; ')}`);
      else report.compared('large objects');
      s.advance();
      t.advance();
    }
  }
  if (unnamed) report.mismatch(`${where}: ${unnamed} more large objects differ`);
  await Promise.all([source, target].map((c) => c.query('CLOSE pgshift_lo')));
}
