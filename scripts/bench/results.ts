// What one run of one method measured, the medians over rounds, and the CSV (one row per run).
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

export const METHODS = ['seed', 'pipe', 'pgcopydb', 'guide', 'stream', 'parallel', 'logical'] as const;
export type MethodKey = (typeof METHODS)[number];
export const PGSHIFT_METHODS: readonly MethodKey[] = ['guide', 'stream', 'parallel', 'logical'];
/** Issue 11's goals are about the copy strategies of method dump. */
export const DUMP_STRATEGIES: readonly MethodKey[] = ['guide', 'stream', 'parallel'];

export const LABELS: Record<MethodKey, string> = {
  seed: 'raw seed commands',
  pipe: 'raw pipe',
  pgcopydb: 'pgcopydb clone',
  guide: 'pgshift dump/guide',
  stream: 'pgshift dump/stream',
  parallel: 'pgshift dump/parallel',
  logical: 'pgshift logical',
};

/** main: the given size; tenth: for linearity; tiny: ~1 MiB, for the workflow's fixed overhead. */
export type Scale = 'main' | 'tenth' | 'tiny';

export interface Row {
  round: number;
  method: MethodKey;
  scale: Scale;
  sizeMiB: number;
  /** Data the fill added (pgbench + orders), MiB. */
  dataMiB: number;
  /** Copy only for the raw methods; start → completed for pgshift (its target's creation included). */
  seconds?: number;
  /** Raw methods: creating their target, timed apart. pgshift: its createTarget step. */
  createSeconds?: number;
  /** Raw seed: the dump to a file and psql -f; pgshift dump: its dump and restore steps. */
  dumpSeconds?: number;
  restoreSeconds?: number;
  /** pgshift: dump + restore (dump), or the initial sync (logical). */
  copySeconds?: number;
  downtimeSeconds?: number;
  /** The bench's own compareServers of source and target. */
  verifySeconds?: number;
  verified?: string;
  /** pgshift: the workflow's verify step. */
  verifyStepSeconds?: number;
  peakRssMiB?: number;
  /** pgshift: the worker's RSS as the run began. */
  startRssMiB?: number;
  writer?: { written: number; missing: number };
  /** pgshift: every step that ran, "name seconds", in order: where the time around the copy goes. */
  steps?: string;
  /** The machine's 1-minute load average when the run started: how quiet it was. */
  load1?: number;
  error?: string;
}

export const isPgshift = (m: MethodKey) => PGSHIFT_METHODS.includes(m);

/** What the comparisons use: pgshift's own time, or a raw method's copy plus its target's creation. */
export function totalOf(r: Row): number | undefined {
  if (r.seconds === undefined || r.error) return undefined;
  if (isPgshift(r.method)) return r.seconds;
  return r.createSeconds === undefined ? undefined : r.seconds + r.createSeconds;
}

export function median(xs: (number | undefined)[]): number | undefined {
  const s = xs.filter((x): x is number => x !== undefined && Number.isFinite(x)).sort((a, b) => a - b);
  if (s.length === 0) return undefined;
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

export class Results {
  readonly rows: Row[] = [];

  of(method: MethodKey, scale: Scale = 'main'): Row[] {
    return this.rows.filter((r) => r.method === method && r.scale === scale);
  }

  /** The median of `pick` over the runs of a method that succeeded. */
  median(method: MethodKey, pick: (r: Row) => number | undefined, scale: Scale = 'main'): number | undefined {
    return median(
      this.of(method, scale)
        .filter((r) => !r.error)
        .map(pick),
    );
  }
}

const CSV_COLUMNS = [
  'round',
  'method',
  'scale',
  'size_mib',
  'data_mib',
  'seconds',
  'target_create_s',
  'total_s',
  'dump_s',
  'restore_s',
  'copy_s',
  'downtime_s',
  'verify_s',
  'verified',
  'verify_step_s',
  'peak_rss_mib',
  'start_rss_mib',
  'writer_rows',
  'writer_missing',
  'load1',
  'steps',
  'error',
] as const;

const num = (x: number | undefined, digits = 3) => (x === undefined ? '' : x.toFixed(digits));
const quoted = (s: string) => (/[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s);

export function writeCsv(path: string, rows: Row[]): void {
  const lines = [CSV_COLUMNS.join(',')];
  for (const r of rows) {
    lines.push(
      [
        String(r.round),
        r.method,
        r.scale,
        num(r.sizeMiB, 1),
        num(r.dataMiB, 1),
        num(r.seconds),
        num(r.createSeconds),
        num(totalOf(r)),
        num(r.dumpSeconds),
        num(r.restoreSeconds),
        num(r.copySeconds),
        num(r.downtimeSeconds),
        num(r.verifySeconds),
        quoted(r.verified ?? ''),
        num(r.verifyStepSeconds),
        num(r.peakRssMiB, 1),
        num(r.startRssMiB, 1),
        r.writer ? String(r.writer.written) : '',
        r.writer ? String(r.writer.missing) : '',
        num(r.load1, 2),
        quoted(r.steps ?? ''),
        quoted(r.error ?? ''),
      ].join(','),
    );
  }
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, lines.join('\n') + '\n');
}
