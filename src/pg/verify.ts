import type { Client } from 'pg';
import type { DatabaseReport, SequenceReport, TableReport, VerificationReport } from '../activities/contract';
import { type PgTarget, openClient, quoteIdent, redactError } from './connection';
import { listDatabases } from './inspect';
import { abortReason } from './process';

export interface CompareOptions {
  /** Called after each table, so a long verification still shows where it is. */
  onProgress?(progress: { database: string; table: string; tablesDone: number }): void;
  signal?: AbortSignal;
  /** Tables with at most this many rows also get their contents compared (md5 of the rows). */
  hashRowLimit?: number;
  /** ... and at most this many bytes on disk (the hash reads every row). */
  hashByteLimit?: number;
}

const DEFAULT_HASH_ROWS = 100_000;
const DEFAULT_HASH_BYTES = 256 * 1024 * 1024;

// System schemas are created by initdb on each side and differ between versions by design.
const USER_RELATIONS = `
  SELECT n.nspname AS schema, c.relname AS name, pg_total_relation_size(c.oid)::text AS bytes
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
   WHERE c.relkind = $1
     AND n.nspname NOT IN ('pg_catalog', 'information_schema')
     AND n.nspname !~ '^pg_(toast|temp_|toast_temp_)'
   ORDER BY 1, 2`;

interface Relation {
  schema: string;
  name: string;
  bytes: string;
}

/** One database open on both servers, each in one snapshot so every table is read at the same moment. */
interface Pair {
  db: string;
  source: Client;
  target: Client;
  /** Row text is only comparable when both servers print floats the same way (12+ print shortest-exact). */
  canHash: boolean;
}

/**
 * Source and target agree when every database of the source exists on the target, every table has the same
 * number of rows (and, for tables small enough to read cheaply, the same rows), and every sequence is at the
 * same value. Leaf tables only: partitioned parents hold no rows themselves (their partitions are compared).
 */
export async function compareServers(
  source: PgTarget,
  target: PgTarget,
  opts: CompareOptions = {},
): Promise<VerificationReport> {
  const report: VerificationReport = {
    ok: true,
    databases: [],
    tablesCompared: 0,
    rowsVerified: 0,
    sequencesCompared: 0,
    mismatches: [],
  };
  const [sourceDbs, targetDbs] = await Promise.all([listDatabases(source), listDatabases(target)]);
  for (const db of sourceDbs) {
    opts.signal?.throwIfAborted();
    if (!targetDbs.includes(db)) {
      report.mismatches.push(`${db}: database missing on target`);
      report.databases.push({ name: db, tables: [], sequences: [] });
      continue;
    }
    report.databases.push(await compareDatabase(source, target, db, report, opts));
  }
  report.ok = report.mismatches.length === 0;
  return report;
}

async function compareDatabase(
  source: PgTarget,
  target: PgTarget,
  db: string,
  report: VerificationReport,
  opts: CompareOptions,
): Promise<DatabaseReport> {
  const [s, t] = await Promise.all([openClient(source, db), openClient(target, db)]);
  const close = () => Promise.all([s.end().catch(() => undefined), t.end().catch(() => undefined)]);
  const stop = () => void close();
  opts.signal?.addEventListener('abort', stop, { once: true });
  try {
    const [sourceMajor, targetMajor] = await Promise.all([beginSnapshot(s), beginSnapshot(t)]);
    const pair: Pair = { db, source: s, target: t, canHash: sourceMajor >= 12 && targetMajor >= 12 };
    const tables = await compareTables(pair, report, opts);
    const sequences = await compareSequences(pair, report);
    return { name: db, tables, sequences };
  } catch (err) {
    if (opts.signal?.aborted) throw abortReason(opts.signal);
    throw redactError(target, redactError(source, err));
  } finally {
    opts.signal?.removeEventListener('abort', stop);
    await close();
  }
}

/** Opens a read-only snapshot with output settings fixed, so row text is the same on both servers. */
async function beginSnapshot(client: Client): Promise<number> {
  await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
  await client.query(
    `SET LOCAL TimeZone = 'UTC'; SET LOCAL DateStyle = 'ISO, YMD'; SET LOCAL IntervalStyle = 'postgres';
     SET LOCAL extra_float_digits = 3; SET LOCAL bytea_output = 'hex'; SET LOCAL lc_monetary = 'C';
     SET LOCAL statement_timeout = 0`,
  );
  const { rows } = await client.query<{ v: string }>(`SELECT current_setting('server_version_num') AS v`);
  return Math.floor(Number(rows[0].v) / 10000);
}

async function compareTables(
  pair: Pair,
  report: VerificationReport,
  opts: CompareOptions,
): Promise<TableReport[]> {
  const [sourceTables, targetTables] = await Promise.all([
    pair.source.query<Relation>(USER_RELATIONS, ['r']),
    pair.target.query<Relation>(USER_RELATIONS, ['r']),
  ]);
  const onTarget = new Set(targetTables.rows.map((r) => `${r.schema}.${r.name}`));
  const results: TableReport[] = [];
  for (const table of sourceTables.rows) {
    opts.signal?.throwIfAborted();
    const label = `${pair.db}.${table.schema}.${table.name}`;
    const qualified = `${quoteIdent(table.schema)}.${quoteIdent(table.name)}`;
    const sourceRows = await countRows(pair.source, qualified);
    report.tablesCompared++;
    if (!onTarget.has(`${table.schema}.${table.name}`)) {
      report.mismatches.push(`${label}: missing on target (source ${sourceRows} rows)`);
      results.push({ schema: table.schema, name: table.name, sourceRows, targetRows: 0, match: false });
      continue;
    }
    const targetRows = await countRows(pair.target, qualified);
    let match = sourceRows === targetRows;
    if (!match) {
      report.mismatches.push(`${label}: source ${sourceRows} rows, target ${targetRows}`);
    } else if (
      pair.canHash &&
      sourceRows > 0 &&
      sourceRows <= (opts.hashRowLimit ?? DEFAULT_HASH_ROWS) &&
      Number(table.bytes) <= (opts.hashByteLimit ?? DEFAULT_HASH_BYTES)
    ) {
      const [sourceHash, targetHash] = await Promise.all([
        hashRows(pair.source, qualified),
        hashRows(pair.target, qualified),
      ]);
      if (sourceHash && targetHash && sourceHash !== targetHash) {
        match = false;
        report.mismatches.push(
          `${label}: source ${sourceRows} rows, target ${targetRows}, but the rows differ (md5 ${sourceHash} vs ${targetHash})`,
        );
      }
    }
    if (match) report.rowsVerified += sourceRows;
    results.push({ schema: table.schema, name: table.name, sourceRows, targetRows, match });
    opts.onProgress?.({
      database: pair.db,
      table: `${table.schema}.${table.name}`,
      tablesDone: results.length,
    });
  }
  return results;
}

async function countRows(client: Client, qualified: string): Promise<number> {
  const { rows } = await client.query<{ n: string }>(`SELECT count(*)::text AS n FROM ${qualified}`);
  return Number(rows[0].n);
}

/**
 * An order-independent fingerprint of a table's rows: md5 of each row's text, sorted, hashed again. Sorting
 * 32-char hex strings needs no collation (the two servers' collations may sort text differently) and little
 * memory. Undefined when the server cannot compute it (md5 is refused in FIPS mode); the count still stands.
 */
async function hashRows(client: Client, qualified: string): Promise<string | undefined> {
  await client.query('SAVEPOINT pgshift_hash');
  try {
    const { rows } = await client.query<{ h: string }>(
      `SELECT md5(coalesce(string_agg(h, '' ORDER BY h COLLATE "C"), '')) AS h
         FROM (SELECT md5(ROW(r.*)::text) AS h FROM ${qualified} r) x`,
    );
    await client.query('RELEASE SAVEPOINT pgshift_hash');
    return rows[0].h;
  } catch {
    await client.query('ROLLBACK TO SAVEPOINT pgshift_hash');
    return undefined;
  }
}

async function compareSequences(pair: Pair, report: VerificationReport): Promise<SequenceReport[]> {
  const [sourceSeqs, targetSeqs] = await Promise.all([
    pair.source.query<Relation>(USER_RELATIONS, ['S']),
    pair.target.query<Relation>(USER_RELATIONS, ['S']),
  ]);
  const onTarget = new Set(targetSeqs.rows.map((r) => `${r.schema}.${r.name}`));
  const results: SequenceReport[] = [];
  for (const seq of sourceSeqs.rows) {
    const label = `${pair.db}.${seq.schema}.${seq.name}`;
    const qualified = `${quoteIdent(seq.schema)}.${quoteIdent(seq.name)}`;
    const sourceValue = await sequenceValue(pair.source, qualified);
    const targetValue = onTarget.has(`${seq.schema}.${seq.name}`)
      ? await sequenceValue(pair.target, qualified)
      : null;
    const match = sourceValue === targetValue;
    report.sequencesCompared++;
    if (!match) {
      report.mismatches.push(
        targetValue === null
          ? `${label}: sequence missing on target (source at ${sourceValue})`
          : `${label}: sequence source at ${sourceValue}, target at ${targetValue}`,
      );
    }
    results.push({ schema: seq.schema, name: seq.name, sourceValue, targetValue, match });
  }
  return results;
}

/** last_value alone is ambiguous: setval(s, 1, false) and one nextval() both show 1; is_called tells them apart. */
async function sequenceValue(client: Client, qualified: string): Promise<string> {
  const { rows } = await client.query<{ v: string; called: boolean }>(
    `SELECT last_value::text AS v, is_called AS called FROM ${qualified}`,
  );
  return rows[0].called ? rows[0].v : `${rows[0].v} (not yet used)`;
}
