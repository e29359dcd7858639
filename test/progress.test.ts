// The progress estimate (percentage, rate, ETA) and what a watch prints without a terminal: pure functions.
import type { LogLevel } from '@temporalio/common';
import { etaFrom, estimateProgress, formatBytes, formatProgressLine } from '../src/lib/progress-estimate';
import type { ProgressOutput } from '../src/lib/progress-bar';
import { QuietSdkLogger } from '../src/lib/sdk-logger';
import { statusHeadline, type StatusView } from '../src/client/status';
import { PLAIN_PROGRESS_INTERVAL_MS, StepProgress, WatchDisplay } from '../src/client/step-progress';
import { STEPS, type MigrationStatus, type StepStatus } from '../src/workflows/definitions';

function migration(running: string, over: Partial<MigrationStatus> = {}): MigrationStatus {
  const at = STEPS.findIndex((s) => s.name === running);
  const steps: StepStatus[] = STEPS.map((s, i) => ({
    name: s.name,
    title: s.title,
    state: i < at ? 'done' : i === at ? 'running' : 'pending',
    ...(i <= at ? { startedAt: 1000 * i } : {}),
    ...(i < at ? { endedAt: 1000 * i + 500 } : {}),
  }));
  return {
    migrationId: 'm',
    platform: 'local',
    source: 'src14',
    target: 'dst17',
    phase: 'running',
    currentStep: running,
    steps,
    compensation: [],
    pointOfNoReturn: false,
    downtime: {},
    cutover: { waiting: false, confirmed: false, earlySignalsIgnored: 0 },
    errors: [],
    warnings: [],
    ...over,
  };
}

function view(status: MigrationStatus, details?: unknown): StatusView {
  return {
    workflowId: 'm',
    execution: 'RUNNING',
    status,
    ...(details ? { progress: { activity: 'dumpSource', details, attempt: 1 } } : {}),
  };
}

describe('estimateProgress', () => {
  test('a dump: share of the source size, average rate, and the rest at that rate', () => {
    const e = estimateProgress({ bytes: 25_000_000, sourceSizeBytes: 100_000_000, elapsedMs: 10_000 })!;
    expect(e.label).toBe('dumping');
    expect(e.fraction).toBeCloseTo(0.25);
    expect(e.rate).toBe('2.5 MB/s');
    expect(e.etaMs).toBeCloseTo(30_000); // 75 MB left at 2.5 MB/s
    expect(formatProgressLine(e)).toBe('dumping 25% — 25 MB of ~100 MB, 2.5 MB/s, ETA 30.0s');
  });

  test('a dump larger than the size on disk waits below 100 % with no ETA', () => {
    const e = estimateProgress({ bytes: 150, sourceSizeBytes: 100, elapsedMs: 5000 })!;
    expect(e.fraction).toBe(0.99);
    expect(e.etaMs).toBeCloseTo((5000 * 0.01) / 0.99);
  });

  test('a dump without a known size: bytes and rate, no percentage or ETA', () => {
    const e = estimateProgress({ bytes: 3_000_000, elapsedMs: 2000 })!;
    expect(e.fraction).toBeUndefined();
    expect(e.etaMs).toBeUndefined();
    expect(formatProgressLine(e)).toBe('dumping — 3.0 MB, 1.5 MB/s');
  });

  test('a restore: position in the dump file', () => {
    const e = estimateProgress({
      phase: 'restoring',
      bytesRead: 600_000,
      totalBytes: 800_000,
      elapsedMs: 3000,
    })!;
    expect(e.label).toBe('restoring');
    expect(e.fraction).toBeCloseTo(0.75);
    expect(e.amount).toBe('600 kB of 800 kB');
    expect(e.etaMs).toBeCloseTo(1000);
  });

  test('a verification: tables of the current database among all databases', () => {
    const e = estimateProgress({
      phase: 'comparing',
      database: 'app',
      table: 'public.events',
      tablesDone: 5,
      tablesTotal: 10,
      databasesDone: 1,
      databasesTotal: 2,
      elapsedMs: 30_000,
    })!;
    expect(e.fraction).toBeCloseTo(0.75);
    expect(e.amount).toBe('app: 5/10 tables (database 2/2)');
    expect(e.etaMs).toBeCloseTo(10_000);
  });

  test('a phase without numbers is only its name; other details are no progress', () => {
    expect(estimateProgress({ phase: 'resetting target', elapsedMs: 100 })).toEqual({
      label: 'resetting target',
    });
    expect(estimateProgress({ app: 'writer', service: 'cmd' })).toBeUndefined();
    expect(estimateProgress(undefined)).toBeUndefined();
  });

  test('no rate or ETA from the first second, nor from nothing done', () => {
    expect(etaFrom(0.5, 500)).toBeUndefined();
    expect(etaFrom(0, 10_000)).toBeUndefined();
    expect(etaFrom(0.5, 10_000)).toBe(10_000);
    expect(formatBytes(999)).toBe('999 B');
    expect(formatBytes(1_234_567_890)).toBe('1.2 GB');
  });
});

describe('status headline', () => {
  test('says what it waits for, with the step number and title', () => {
    const s = migration('awaitCutover', { phase: 'awaiting-cutover' });
    const n = STEPS.findIndex((step) => step.name === 'awaitCutover') + 1;
    expect(statusHeadline(s)).toBe(
      `Waiting for your cutover confirmation — step ${n}/${STEPS.length}: Wait for cutover confirmation`,
    );
  });
});

describe('a watch without a terminal', () => {
  test('prints each step once, and the progress at most every 30 s', () => {
    const progress = new StepProgress();
    const details = { bytes: 1_000_000, sourceSizeBytes: 4_000_000, elapsedMs: 2000 };
    const first = view(migration('dump'), details);
    expect(progress.next(first)).toContain('Dump the data: started');
    expect(progress.progressLine(first, 0)).toBe(
      'Dump the data: dumping 25% — 1.0 MB of ~4.0 MB, 500 kB/s, ETA 6.0s',
    );
    expect(progress.next(first)).toEqual([]);
    expect(progress.progressLine(first, PLAIN_PROGRESS_INTERVAL_MS - 1)).toBeUndefined();
    expect(progress.progressLine(first, PLAIN_PROGRESS_INTERVAL_MS)).toMatch(/^Dump the data: dumping/);
  });

  test('quick steps between two polls are each narrated', () => {
    const display = new WatchDisplay((line) => lines.push(line), undefined, 'demo: ');
    const lines: string[] = [];
    display.show(view(migration('awaitCutover')));
    lines.length = 0;
    display.show(view(migration('vacuumAnalyze')));
    expect(lines).toEqual([
      expect.stringMatching(/^demo: Wait for cutover confirmation: done in /),
      'demo: Update services to the target: started',
      expect.stringMatching(/^demo: Update services to the target: done in /),
      'demo: Scale services back up: started',
      expect.stringMatching(/^demo: Scale services back up: done in /),
      'demo: Vacuum and analyze: started',
    ]);
  });
});

describe('a watch on a terminal', () => {
  test("moves the bar with the running step's estimate and clears it when the step ends", () => {
    const calls: string[] = [];
    const bar: ProgressOutput = {
      log: (line) => calls.push(`log ${line}`),
      update: (title, e) => calls.push(e ? `bar ${title} ${Math.round((e.fraction ?? 0) * 100)}` : 'clear'),
      stop: () => calls.push('stop'),
    };
    const display = new WatchDisplay(() => calls.push('plain'), bar);
    display.show(view(migration('dump'), { bytes: 10, sourceSizeBytes: 100, elapsedMs: 2000 }));
    display.show(view(migration('dump'), { bytes: 50, sourceSizeBytes: 100, elapsedMs: 4000 }));
    display.show(view(migration('restore')));
    expect(calls.filter((c) => !c.startsWith('log ') || /^log (Dump|Restore) the data/.test(c))).toEqual([
      'log Dump the data: started',
      'bar Dump the data 10',
      'bar Dump the data 50',
      'clear',
      'log Dump the data: done in 500ms',
      'log Restore the data: started',
    ]);
  });
});

describe('the SDK log', () => {
  test("drops the host worker's expected warning and nothing else", () => {
    const seen: string[] = [];
    const logger = new QuietSdkLogger({
      log: (level: LogLevel, message: string) => seen.push(`${level} ${message}`),
      trace: () => undefined,
      debug: () => undefined,
      info: () => undefined,
      warn: () => undefined,
      error: () => undefined,
    });
    logger.warn('No workflows registered, not polling for workflow tasks');
    logger.warn('Activity failed');
    logger.info('No workflows registered, not polling for workflow tasks');
    expect(seen).toEqual([
      'WARN Activity failed',
      'INFO No workflows registered, not polling for workflow tasks',
    ]);
  });
});
