import type { Client } from 'pg';
import type { SequenceReport, TableReport } from '../../activities/contract';
import { type PgTarget, openClient } from '../connection';
import { abortReason } from '../process';
import { type CatalogClass, diffEntries, readEntries } from './fingerprint';
import { compareLargeObjects } from './large-objects';
import { languages, routines, types } from './routine-classes';
import {
  comments,
  defaultPrivileges,
  eventTriggers,
  extensions,
  foreignData,
  otherObjects,
  publications,
  schemas,
  statisticsObjects,
} from './object-classes';
import { type ReportBuilder, dbLabel } from './report';
import { compareSequenceValues } from './sequences';
import { type SnapshotPool, openPair, openSnapshotPool } from './session';
import { type Checksum, type Unit, checksum, countRows, listUnits, tableReport } from './tables';
import {
  constraints,
  indexes,
  policies,
  relations,
  rules,
  sequenceDefinitions,
  triggers,
} from './table-classes';
import { type Versions, normalizeClass, reconcileViewDefinitions } from './version-differences';
import { isReplicationName } from '../logical/names';

/** The schema fingerprint of a database, class by class. */
export const DATABASE_CLASSES: CatalogClass[] = [
  schemas,
  relations,
  sequenceDefinitions,
  indexes,
  constraints,
  triggers,
  policies,
  rules,
  routines,
  types,
  languages,
  extensions,
  comments,
  defaultPrivileges,
  eventTriggers,
  publications,
  statisticsObjects,
  foreignData,
  otherObjects,
];

/** Row text and the catalog queries need 12+ on both sides (float output, pg_partition_root, prokind...). */
export const FULL_COMPARE_MAJOR = 12;

export interface DatabaseProgress {
  database: string;
  table: string;
  tablesDone: number;
  tablesTotal: number;
}

/** What is compared of the rows: content hashes (the default), or only how many there are. */
export type ContentCheck = 'hashes' | 'counts';

export interface DatabaseCompareOptions {
  versions: Versions;
  /**
   * 'counts': row counts of every table instead of content hashes, no large objects (method logical,
   * which refuses sources that have them), and its own publications (names.ts) left out of the fingerprint:
   * they exist on the source only, until the clean-up after the cutover drops them.
   */
  content?: ContentCheck;
  /** Connections per server reading tables at once. */
  parallel: number;
  signal?: AbortSignal;
  onProgress?(progress: DatabaseProgress): void;
}

const UNIT_WORD: Record<Unit['kind'], string> = {
  table: 'table',
  'partition tree': 'partitioned table',
  matview: 'materialized view',
};

/** Compares one database that both servers let us read: schema fingerprint, rows, sequences, large objects. */
export async function compareDatabase(
  source: PgTarget,
  target: PgTarget,
  db: string,
  report: ReportBuilder,
  opts: DatabaseCompareOptions,
): Promise<void> {
  const where = dbLabel(db);
  const pools: SnapshotPool[] = [];
  const stop = () => void Promise.all(pools.map((p) => p.close()));
  opts.signal?.addEventListener('abort', stop, { once: true });
  try {
    const [s, t] = await openPair(
      () => openSnapshotPool(source, db, opts.parallel),
      () => openSnapshotPool(target, db, opts.parallel),
      (pool) => pool.close(),
    );
    pools.push(s, t);
    opts.signal?.throwIfAborted();
    const full = opts.versions.source >= FULL_COMPARE_MAJOR && opts.versions.target >= FULL_COMPARE_MAJOR;
    const counts = opts.content === 'counts';
    if (full) {
      await compareFingerprint(s.leader, t.leader, () => openClient(target, db), where, report, {
        versions: opts.versions,
        ignorePublication: counts ? isReplicationName : undefined,
      });
    } else {
      // Counting proves nothing about the rows' contents: the run must not say ok (preflight refuses such a
      // source; this guards a verification started some other way).
      report.mismatch(
        `${where}: not verified: PostgreSQL ${opts.versions.source} → ${opts.versions.target}: the schema ` +
          `fingerprint and row contents need ${FULL_COMPARE_MAJOR} or later on both sides; rows were only counted`,
      );
    }
    const tables = await compareUnits(s, t, where, db, full, report, opts);
    const sequences = await compareSequences(s, t, where, full, report);
    if (!counts) await compareLargeObjects(s.leader, t.leader, where, report);
    report.addDatabase({ name: db, tables, sequences });
  } catch (err) {
    if (opts.signal?.aborted) throw abortReason(opts.signal);
    throw err;
  } finally {
    opts.signal?.removeEventListener('abort', stop);
    await Promise.all(pools.map((p) => p.close()));
  }
}

/**
 * Compares the schema fingerprint of one database, class by class, as two read-only sessions see it.
 * `connectTarget` opens a writable session on the target's database (view definitions are re-parsed there).
 * `ignorePublication` leaves publications so named (and their comments) out on both sides.
 */
export async function compareFingerprint(
  source: Client,
  target: Client,
  connectTarget: () => Promise<Client>,
  where: string,
  report: ReportBuilder,
  opts: { versions: Versions; ignorePublication?: (name: string) => boolean },
): Promise<void> {
  for (const cls of DATABASE_CLASSES) {
    const [se, te] = await Promise.all([
      readEntries(source, cls, opts.versions.source),
      readEntries(target, cls, opts.versions.target),
    ]);
    if ((cls === publications || cls === comments) && opts.ignorePublication) {
      for (const entries of [se, te]) {
        for (const key of [...entries.keys()]) {
          const name = /^(?:comment on )?publication (.*)$/.exec(key)?.[1];
          if (name !== undefined && opts.ignorePublication(name)) entries.delete(key);
        }
      }
    }
    normalizeClass(cls.name, se, te, opts.versions, (text) => report.note(`${where}: ${text}`));
    if (cls === relations) await reconcileViewDefinitions(connectTarget, se, te);
    diffEntries(cls.name, where, se, te, report);
  }
}

/** What comparing one unit found; recorded in the units' order, whatever order the pool finished them in. */
interface Outcome {
  entry: TableReport;
  cls: string;
  /** The mismatch line; with `silent`, a mismatch the fingerprint already names. */
  problem?: string;
  silent?: boolean;
  note?: string;
}

async function compareUnits(
  s: SnapshotPool,
  t: SnapshotPool,
  where: string,
  db: string,
  full: boolean,
  report: ReportBuilder,
  opts: DatabaseCompareOptions,
): Promise<TableReport[]> {
  const [sourceUnits, targetUnits] = await Promise.all([
    listUnits(s.leader, s.major),
    listUnits(t.leader, t.major),
  ]);
  const onTarget = new Map(targetUnits.map((u) => [`${u.kind} ${u.ident}`, u]));
  // Biggest first, so the pool does not end waiting on one large table started last.
  const queue = [...sourceUnits].sort((a, b) => b.bytes - a.bytes);
  const outcomes = new Map<Unit, Outcome>();
  const counts = opts.content === 'counts';
  const read = full && !counts ? checksum : countRows;
  const views = sourceUnits.filter((u) => u.kind === 'matview').length;
  if (counts && views > 0) {
    report.note(
      `${where}: ${views} materialized view(s): refreshed on the target at cutover, so only whether each is ` +
        'populated is compared (a view the source last refreshed earlier holds older rows)',
    );
  }
  const worker = async (k: number) => {
    for (let unit = queue.shift(); unit; unit = queue.shift()) {
      opts.signal?.throwIfAborted();
      const other = onTarget.get(`${unit.kind} ${unit.ident}`);
      outcomes.set(
        unit,
        await compareUnit(unit, other, s.all[k], t.all[k], read, `${where}: `, full, counts),
      );
      opts.onProgress?.({
        database: db,
        table: `${unit.schema}.${unit.name}`,
        tablesDone: outcomes.size,
        tablesTotal: sourceUnits.length,
      });
    }
  };
  await Promise.all(s.all.map((_, k) => worker(k)));
  return sourceUnits.map((unit) => {
    const { entry, cls, problem, silent, note } = outcomes.get(unit)!;
    report.report.tablesCompared++;
    if (note) report.note(note);
    else if (silent) report.countMismatch(cls);
    else report.compared(cls, problem);
    if (entry.match) report.report.rowsVerified += entry.sourceRows;
    return entry;
  });
}

async function compareUnit(
  unit: Unit,
  other: Unit | undefined,
  source: Client,
  target: Client,
  read: (c: Client, u: Unit) => Promise<Checksum>,
  prefix: string,
  full: boolean,
  counts: boolean,
): Promise<Outcome> {
  const label = `${prefix}${UNIT_WORD[unit.kind]} ${unit.ident}`;
  const cls = unit.kind === 'matview' ? 'materialized view contents' : 'table contents';
  const empty: Checksum = { rows: 0, sum: '0' };
  if (unit.foreign) {
    return {
      entry: tableReport(unit, empty, empty),
      cls,
      note: `${label}: not read (hash-partitioned with a foreign partition, another server's data)`,
    };
  }
  if (!other) {
    const rows = unit.populated ? await read(source, unit) : empty;
    // The fingerprint names the missing relation; without one, this is the only line that does.
    const problem = `${label}: missing on target (source ${rows.rows} rows)`;
    return { entry: tableReport(unit, rows, undefined), cls, problem, silent: full };
  }
  if (unit.kind === 'matview' && unit.populated !== other.populated) {
    const problem = `${label}: ${unit.populated ? 'populated on the source, not on the target' : 'populated on the target only'}`;
    return { entry: { ...tableReport(unit, empty, empty), match: false }, cls, problem };
  }
  // Counts: a view's rows are computed on the target (the cutover refreshes it), not carried.
  if (counts && unit.kind === 'matview') return { entry: tableReport(unit, empty, empty), cls };
  const [a, b] = unit.populated
    ? await Promise.all([read(source, unit), read(target, other)])
    : [empty, empty];
  const entry = tableReport(unit, a, b);
  if (entry.match) return { entry, cls };
  const problem =
    a.rows !== b.rows
      ? `${label}: source ${a.rows} rows, target ${b.rows}`
      : `${label}: ${a.rows} rows on both sides, but their contents differ`;
  return { entry, cls, problem };
}

async function compareSequences(
  s: SnapshotPool,
  t: SnapshotPool,
  where: string,
  full: boolean,
  report: ReportBuilder,
): Promise<SequenceReport[]> {
  const values = await compareSequenceValues(s.leader, t.leader);
  for (const { ident, report: seq } of values) {
    report.report.sequencesCompared++;
    let problem: string | undefined;
    if (seq.targetValue === null) {
      // As for tables: the fingerprint names a missing sequence.
      if (!full) problem = `${where}: sequence ${ident}: missing on target (source at ${seq.sourceValue})`;
    } else if (!seq.match) {
      problem = `${where}: sequence ${ident}: source at ${seq.sourceValue}, target at ${seq.targetValue}`;
    }
    if (seq.targetValue === null && full) report.countMismatch('sequence values');
    else report.compared('sequence values', problem);
  }
  return values.map((v) => v.report);
}
