// How far a running step is, how fast it goes and when it should end, from the details its activity last
// heartbeated. Pure: the status command, the watch display and the tests share it.
import { formatDuration } from './duration';

/** What the activities heartbeat (see ActivityScope.progress); every field is optional on the wire. */
export interface ProgressDetails {
  phase?: string;
  /** Dump: bytes written so far. */
  bytes?: number;
  /** Dump: the source's size on disk (pg_database_size of every database), the dump's expected size. */
  sourceSizeBytes?: number;
  /** Restore: psql's position in the dump file, and the file's size. */
  bytesRead?: number;
  totalBytes?: number;
  /** Verification: tables of the current database, and databases. */
  database?: string;
  table?: string;
  tablesDone?: number;
  tablesTotal?: number;
  databasesDone?: number;
  databasesTotal?: number;
  /** Vacuum: databases done (index) of total. */
  index?: number;
  total?: number;
  /** Time since the phase began, on the worker, when the activity heartbeated these details. */
  elapsedMs?: number;
}

export interface ProgressEstimate {
  /** What is going on, e.g. "dumping", "restoring", "comparing". */
  label: string;
  /** 0..1 when the total is known. */
  fraction?: number;
  /** e.g. "120 MB of ~260 MB", "db app: 3/12 tables (database 1/2)". */
  amount?: string;
  /** e.g. "12.3 MB/s" (byte-counted steps only). */
  rate?: string;
  etaMs?: number;
}

// A dump is text, not the size on disk (no index data, no free space), so it may outgrow the estimate:
// the bar then waits near its end rather than passing 100 %.
const MAX_UNFINISHED_FRACTION = 0.99;
// Below this the rate is mostly noise (a first chunk, a connection being set up).
const MIN_ELAPSED_FOR_RATE_MS = 1000;

export function formatBytes(n: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let value = n;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit++;
  }
  return `${unit === 0 ? value : value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`;
}

function asDetails(details: unknown): ProgressDetails | undefined {
  return details && typeof details === 'object' ? (details as ProgressDetails) : undefined;
}

/** Time left if the rest goes at the average pace so far: elapsed × (1 − f) / f. */
export function etaFrom(fraction: number | undefined, elapsedMs: number | undefined): number | undefined {
  if (fraction === undefined || elapsedMs === undefined || elapsedMs < MIN_ELAPSED_FOR_RATE_MS)
    return undefined;
  if (fraction <= 0 || fraction >= 1) return undefined;
  return (elapsedMs * (1 - fraction)) / fraction;
}

function perSecond(done: number, elapsedMs: number | undefined): number | undefined {
  if (elapsedMs === undefined || elapsedMs < MIN_ELAPSED_FOR_RATE_MS || done <= 0) return undefined;
  return done / (elapsedMs / 1000);
}

const clamp = (f: number) => Math.max(0, Math.min(MAX_UNFINISHED_FRACTION, f));

function bytesEstimate(label: string, done: number, total: number | undefined, elapsedMs?: number) {
  const fraction = total && total > 0 ? clamp(done / total) : undefined;
  const rate = perSecond(done, elapsedMs);
  return {
    label,
    fraction,
    amount: `${formatBytes(done)}${total ? ` of ${label === 'dumping' ? '~' : ''}${formatBytes(total)}` : ''}`,
    rate: rate !== undefined ? `${formatBytes(rate)}/s` : undefined,
    etaMs: etaFrom(fraction, elapsedMs),
  };
}

/** The estimate for heartbeat details of a dump, restore, verification or vacuum; undefined for others. */
export function estimateProgress(raw: unknown): ProgressEstimate | undefined {
  const d = asDetails(raw);
  if (!d) return undefined;
  const elapsed = d.elapsedMs;
  if (d.bytesRead !== undefined && d.totalBytes !== undefined) {
    return bytesEstimate(d.phase ?? 'restoring', d.bytesRead, d.totalBytes, elapsed);
  }
  if (d.bytes !== undefined && d.phase === undefined) {
    return bytesEstimate('dumping', d.bytes, d.sourceSizeBytes, elapsed);
  }
  if (d.tablesDone !== undefined && d.tablesTotal !== undefined) {
    const dbs = d.databasesTotal ?? 1;
    const inDb = d.tablesTotal > 0 ? d.tablesDone / d.tablesTotal : 1;
    const fraction = clamp(((d.databasesDone ?? 0) + inDb) / dbs);
    return {
      label: d.phase ?? 'comparing',
      fraction,
      amount:
        `${d.database ?? '?'}: ${d.tablesDone}/${d.tablesTotal} tables` +
        (dbs > 1 ? ` (database ${(d.databasesDone ?? 0) + 1}/${dbs})` : ''),
      etaMs: etaFrom(fraction, elapsed),
    };
  }
  if (d.index !== undefined && d.total !== undefined && d.total > 0) {
    const fraction = clamp(d.index / d.total);
    return {
      label: d.phase ?? 'working',
      fraction,
      amount: `${d.database ?? '?'} (database ${d.index + 1}/${d.total})`,
      etaMs: etaFrom(fraction, elapsed),
    };
  }
  if (d.phase) return { label: d.phase };
  return undefined;
}

/** One line: "dumping 45% — 120 MB of ~260 MB, 12.3 MB/s, ETA 11.0s". */
export function formatProgressLine(e: ProgressEstimate): string {
  const parts = [
    e.amount,
    e.rate,
    e.etaMs !== undefined ? `ETA ${formatDuration(e.etaMs)}` : undefined,
  ].filter(Boolean);
  const pct = e.fraction !== undefined ? ` ${Math.floor(e.fraction * 100)}%` : '';
  return `${e.label}${pct}${parts.length ? ` — ${parts.join(', ')}` : ''}`;
}
