// The benchmark's printout: a table of medians and ratios, the figures around the copy, and the goals of
// issue 11 (speed) and issue 9 (online downtime) beside what was measured.
import { cpus } from 'node:os';
import {
  DUMP_STRATEGIES,
  LABELS,
  METHODS,
  type MethodKey,
  PGSHIFT_METHODS,
  type Results,
  type Row,
  isPgshift,
  totalOf,
} from './results';

export interface ReportContext {
  sizeMiB: number;
  rounds: number;
  /** Data each source holds (pgbench + orders, MiB), by scale. */
  dataMiB: { main: number; tenth: number; tiny: number };
  /** The worker's RSS when idle: right after it started, and after a warm-up migration (MiB). */
  idleRssMiB: { cold: number; warm: number };
  pgcopydb: boolean;
  /** What the worker ran: the compiled CLI or the sources through tsx. */
  workerCode: string;
}

const f = (x: number | undefined, digits = 1) => (x === undefined ? '-' : x.toFixed(digits));
const ratio = (a: number | undefined, b: number | undefined) =>
  a === undefined || b === undefined || b <= 0 ? undefined : a / b;
const x = (r: number | undefined, digits = 2) => (r === undefined ? '-' : `${r.toFixed(digits)}×`);

type Verdict = 'met' | 'NOT MET' | 'n/a';
const verdict = (ok: boolean | undefined): Verdict => (ok === undefined ? 'n/a' : ok ? 'met' : 'NOT MET');
/** Whether a measured value is within its limit; undefined when it was not measured. */
const within = (value: number | undefined, limit: number) =>
  verdict(value === undefined ? undefined : value <= limit);

function verifiedOf(rows: Row[]): string {
  const seen = [...new Set(rows.filter((r) => r.verified).map((r) => r.verified!))];
  return seen.join('; ') || '-';
}

export function printReport(res: Results, ctx: ReportContext): void {
  const total = (m: MethodKey) => res.median(m, totalOf);
  const pgcopydb = total('pgcopydb');
  const pipe = total('pipe');
  const methods = METHODS.filter((m) => res.of(m).length > 0);
  const label = ctx.rounds > 1 ? `medians of ${ctx.rounds} rounds` : 'one round';

  console.log(
    `\n== pgshift benchmark: PostgreSQL 14 → 17 on the local platform, ${f(ctx.dataMiB.main, 0)} MiB of data ` +
      `(asked ${ctx.sizeMiB} MiB), ${label}; worker: ${ctx.workerCode}\n`,
  );
  const head = [
    'method',
    'ok',
    'seconds',
    'target s',
    'total s',
    '×pgcopydb',
    '×pipe+tgt',
    'downtime s',
    'verify s',
  ];
  const widths = [22, 6, 10, 10, 10, 11, 11, 12, 10];
  const line = (cells: string[]) =>
    console.log(cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join(''));
  line(head);
  for (const m of methods) {
    const rows = res.of(m);
    const t = total(m);
    line([
      LABELS[m],
      `${rows.filter((r) => !r.error).length}/${rows.length}`,
      f(res.median(m, (r) => r.seconds)),
      f(res.median(m, (r) => r.createSeconds)),
      f(t),
      x(ratio(t, pgcopydb)),
      x(ratio(t, pipe)),
      isPgshift(m) ? f(res.median(m, (r) => r.downtimeSeconds)) : '-',
      f(res.median(m, (r) => r.verifySeconds)),
    ]);
  }
  const loads = res.rows.map((r) => r.load1).filter((l): l is number => l !== undefined);
  console.log(
    '\n  seconds: raw methods their copy, pgshift start → completed (no confirmation, no vacuum)\n' +
      "  target s: creating the target (pgshift's createTarget step, inside its seconds)\n" +
      '  total s: what the ratios compare (a raw method with its target, pgshift its seconds)\n' +
      (loads.length
        ? `  load average (1 min) as the runs started: ${f(Math.min(...loads))} to ${f(Math.max(...loads))} ` +
          `on ${cpus().length} CPU(s)`
        : ''),
  );
  if (!ctx.pgcopydb) console.log('  pgcopydb: not installed (apt-get install pgcopydb)');
  for (const m of methods) console.log(`  verified ${LABELS[m]}: ${verifiedOf(res.of(m))}`);
  const failed = res.rows.filter((r) => r.error);
  if (failed.length) console.log('\nFailed runs:');
  for (const r of failed) console.log(`  round ${r.round} ${LABELS[r.method]} (${r.scale}): ${r.error}`);
  printDetails(res, ctx);
}

function printDetails(res: Results, ctx: ReportContext): void {
  const med = (m: MethodKey, pick: (r: Row) => number | undefined, scale: Row['scale'] = 'main') =>
    res.median(m, pick, scale);
  const ran = (m: MethodKey, scale: Row['scale'] = 'main') => res.of(m, scale).length > 0;
  const seedDump = med('seed', (r) => r.dumpSeconds);
  const seedRestore = med('seed', (r) => r.restoreSeconds);
  const seed = med('seed', (r) => r.seconds);
  const strategies = DUMP_STRATEGIES.filter((m) => ran(m));
  const pgshift = PGSHIFT_METHODS.filter((m) => ran(m));

  if (strategies.length && ran('seed')) {
    console.log(
      '\nCopy: the dump and restore steps against the raw seed commands (pg_dumpall | grep > file; psql -f)',
    );
    for (const m of strategies) {
      const copy = med(m, (r) => r.copySeconds);
      console.log(
        `  ${LABELS[m]}: dump ${f(med(m, (r) => r.dumpSeconds))} s + restore ${f(med(m, (r) => r.restoreSeconds))} s` +
          ` = ${f(copy)} s; raw ${f(seedDump)} s + ${f(seedRestore)} s = ${f(seed)} s: ${x(ratio(copy, seed))}`,
      );
    }
  }
  const guideCopy = ratio(
    med('guide', (r) => r.copySeconds),
    seed,
  );
  const guideDump = ratio(
    med('guide', (r) => r.dumpSeconds),
    seedDump,
  );

  if (pgshift.length) {
    console.log("\nVerification's share of the copy (the workflow's verify step)");
    for (const m of pgshift) {
      const share = ratio(
        med(m, (r) => r.verifyStepSeconds),
        med(m, (r) => r.copySeconds),
      );
      console.log(
        `  ${LABELS[m]}: verify ${f(med(m, (r) => r.verifyStepSeconds))} s / ` +
          `${m === 'logical' ? 'initial sync' : 'dump+restore'} ${f(med(m, (r) => r.copySeconds))} s = ` +
          `${share === undefined ? '-' : `${(100 * share).toFixed(0)}%`}`,
      );
    }
  }

  const tinyGuide = med('guide', (r) => r.seconds, 'tiny');
  const tinyRaw = med('seed', totalOf, 'tiny');
  const overhead = tinyGuide === undefined || tinyRaw === undefined ? undefined : tinyGuide - tinyRaw;
  if (ran('guide', 'tiny')) {
    console.log(`\nWorkflow overhead on a tiny database (${f(ctx.dataMiB.tiny, 2)} MiB of data)`);
    console.log(
      `  pgshift dump/guide start → completed ${f(tinyGuide)} s − (raw seed commands ` +
        `${f(med('seed', (r) => r.seconds, 'tiny'))} s + target creation ` +
        `${f(med('seed', (r) => r.createSeconds, 'tiny'))} s) = ${f(overhead)} s`,
    );
  }

  const peaks = pgshift.map((m) => [m, med(m, (r) => r.peakRssMiB)] as const);
  // Each run against the worker's RSS as that run began: what the migration itself added. The worker's
  // idle RSS drifts up over many migrations (the heap V8 keeps), which is not the copy's doing.
  const growth = pgshift.map(
    (m) =>
      [m, med(m, (r) => (r.peakRssMiB && r.startRssMiB ? r.peakRssMiB / r.startRssMiB : undefined))] as const,
  );
  const grown = growth.map(([, g]) => g).filter((g): g is number => g !== undefined);
  const rss = grown.length ? Math.max(...grown) : undefined;
  if (peaks.length) {
    console.log('\nWorker memory (VmRSS and VmHWM of the worker process)');
    console.log(
      `  idle: ${f(ctx.idleRssMiB.cold, 0)} MiB after start-up, ${f(ctx.idleRssMiB.warm, 0)} MiB after a ` +
        `warm-up migration; peak during a migration: ` +
        peaks.map(([m, p]) => `${LABELS[m]} ${f(p, 0)} MiB`).join(', '),
    );
    console.log(
      `  peak against the worker's RSS as the run began (median): ` +
        growth.map(([m, g]) => `${LABELS[m]} ${x(g)}`).join(', '),
    );
  }

  const dataRatio = ratio(ctx.dataMiB.main, ctx.dataMiB.tenth);
  const linear = new Map<MethodKey, number | undefined>();
  const tenth = DUMP_STRATEGIES.filter((m) => ran(m, 'tenth'));
  if (tenth.length) {
    console.log(
      `\nLinearity: ${f(ctx.dataMiB.tenth, 1)} MiB against ${f(ctx.dataMiB.main, 0)} MiB of data (×${f(dataRatio, 2)})`,
    );
  }
  for (const m of tenth) {
    const copy = ratio(
      med(m, (r) => r.copySeconds),
      med(m, (r) => r.copySeconds, 'tenth'),
    );
    const whole = ratio(
      med(m, (r) => r.seconds),
      med(m, (r) => r.seconds, 'tenth'),
    );
    linear.set(m, ratio(copy, dataRatio));
    console.log(
      `  ${LABELS[m]}: copy steps ${f(med(m, (r) => r.copySeconds, 'tenth'))} → ${f(med(m, (r) => r.copySeconds))} s ` +
        `(×${f(copy, 2)}), start → completed ${f(med(m, (r) => r.seconds, 'tenth'))} → ` +
        `${f(med(m, (r) => r.seconds))} s (×${f(whole, 2)}); copy time per data ${x(ratio(copy, dataRatio))}`,
    );
  }

  const downtime = (m: MethodKey) => med(m, (r) => r.downtimeSeconds);
  const writes = res.of('logical').filter((r) => r.writer && !r.error);
  const written = writes.reduce((n, r) => n + r.writer!.written, 0);
  const missing = writes.reduce((n, r) => n + r.writer!.missing, 0);
  if (pgshift.length) {
    console.log('\nDowntime (services at zero: scale-down → scale-up)');
    console.log(`  ${pgshift.map((m) => `${LABELS[m]} ${f(downtime(m))} s`).join(', ')}`);
  }
  if (writes.length)
    console.log(
      `  the writer wrote ${written} row(s) during the logical runs; missing on the targets: ${missing}`,
    );

  const fastest = DUMP_STRATEGIES.filter((m) => res.median(m, totalOf) !== undefined).sort(
    (a, b) => res.median(a, totalOf)! - res.median(b, totalOf)!,
  )[0];
  const fast = fastest && res.median(fastest, totalOf);
  const vsCopydb = ratio(fast, res.median('pgcopydb', totalOf));
  const vsPipe = ratio(fast, res.median('pipe', totalOf));
  const name = fastest ? LABELS[fastest] : 'none succeeded';
  const lin = fastest ? linear.get(fastest) : undefined;
  const logical = downtime('logical');
  const goals: [string, Verdict, string][] = [
    [
      `fastest pgshift strategy (${name}) ≤ 0.85 × pgcopydb clone + its target`,
      within(vsCopydb, 0.85),
      x(vsCopydb),
    ],
    ['fastest pgshift strategy ≤ 1.00 × raw pipe + target creation', within(vsPipe, 1), x(vsPipe)],
    [
      'guide strategy copy (dump+restore steps) ≤ 1.05 × raw seed commands',
      within(guideCopy, 1.05),
      x(guideCopy),
    ],
    ['(item 2) guide dump step ≤ 1.05 × raw pg_dumpall | grep > file', within(guideDump, 1.05), x(guideDump)],
    [
      'overhead on a tiny database ≤ 3 s beyond raw commands + target creation',
      within(overhead, 3),
      `${f(overhead)} s`,
    ],
    ["worker's peak RSS during a migration ≤ 1.2 × the idle worker's as it began", within(rss, 1.2), x(rss)],
    [`10× data ≤ 10.5× time (copy steps of the fastest strategy)`, within(lin, 1.05), `time/data ${x(lin)}`],
  ];
  const online: [string, Verdict, string][] = [
    [
      'method logical: downtime ≤ 5 s',
      within(logical, 5),
      `${f(logical)} s (dump/guide ${f(downtime('guide'))} s)`,
    ],
    [
      'method logical: every row the writer wrote is on the target',
      verdict(writes.length ? missing === 0 : undefined),
      `${missing} of ${written} missing`,
    ],
  ];
  const show = (title: string, list: [string, Verdict, string][]) => {
    console.log(`\n${title}`);
    for (const [goal, v, value] of list) console.log(`  [${v.padEnd(7)}] ${goal}: ${value}`);
  };
  show('Goals of issue 11 (speed; n/a: not measured in this run)', goals);
  show('Goals of issue 9 (online)', online);
}
