import type { Client } from 'pg';
import type { ReportBuilder } from './report';

// One line per large object: its owner, its privileges and the md5 of its contents (lo_get reads it whole
// inside the server; objects over 1 GB cannot be read that way and make the comparison fail, as a note).
const PER_OBJECT = `
  SELECT m.oid::text AS oid, pg_get_userbyid(m.lomowner) AS owner,
         (SELECT coalesce(string_agg(a::text, ',' ORDER BY a::text COLLATE "C"), '')
            FROM unnest(coalesce(m.lomacl, acldefault('L', m.lomowner))) a) AS privileges,
         md5(lo_get(m.oid)) AS content
    FROM pg_largeobject_metadata m`;

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
 * differs a walk of both sides in OID order, a batch at a time, naming the objects that differ.
 */
export async function compareLargeObjects(
  source: Client,
  target: Client,
  where: string,
  report: ReportBuilder,
): Promise<void> {
  let summaries: string[];
  try {
    summaries = await Promise.all([summary(source), summary(target)]);
  } catch (err) {
    report.note(`${where}: large objects not compared: ${(err as Error).message}`);
    return;
  }
  if (summaries[0] === summaries[1]) {
    report.comparedAlike('large objects', Number(summaries[0].split(' ')[0]));
    return;
  }
  await walk(source, target, where, report);
}

async function summary(client: Client): Promise<string> {
  await client.query('SAVEPOINT pgshift_lo');
  try {
    const { rows } = await client.query<{ s: string }>(
      `SELECT count(*) || ' ' || coalesce(sum(hashtextextended(oid || owner || privileges || content, 0)), 0) AS s
         FROM (${PER_OBJECT}) x`,
    );
    await client.query('RELEASE SAVEPOINT pgshift_lo');
    return rows[0].s;
  } catch (err) {
    await client.query('ROLLBACK TO SAVEPOINT pgshift_lo');
    throw err;
  }
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

async function walk(source: Client, target: Client, where: string, report: ReportBuilder): Promise<void> {
  await Promise.all(
    [source, target].map((c) => c.query(`DECLARE pgshift_lo CURSOR FOR ${PER_OBJECT} ORDER BY m.oid`)),
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
