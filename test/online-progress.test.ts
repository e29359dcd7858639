// What the online migration shows while it replicates, without a server: the samples' pace and the
// bounded lag history (src/workflows/replication-sampling.ts), and the watch's live progress from them.
import type { ReplicationSample } from '../src/activities/contract';
import { runningProgress } from '../src/client/step-progress';
import { LAG_HISTORY_MAX, type MigrationStatus } from '../src/workflows/definitions';
import { recordSample, samplePaceMs } from '../src/workflows/replication-sampling';
import { sample } from './helpers/online-stubs';

test('samples slow down as a wait goes on, so even the longest gate keeps a bounded history', () => {
  const count = (ms: number) => {
    let n = 0;
    for (let t = 0; t < ms; t += samplePaceMs(t)) n += 1;
    return n;
  };
  const HOUR = 3_600_000;
  expect(samplePaceMs(0)).toBe(5_000);
  expect(count(10 * 60_000)).toBe(120);
  expect(count(24 * HOUR)).toBeLessThan(600);
  expect(count(366 * 24 * HOUR)).toBeLessThan(1_200);

  const replication = { lagHistory: [] as { at: number; bytes: number }[] };
  for (let i = 0; i < LAG_HISTORY_MAX + 50; i += 1)
    recordSample(replication, { ...sample(2, i), at: i }, true);
  expect(replication.lagHistory).toHaveLength(LAG_HISTORY_MAX);
  expect(replication.lagHistory[0].bytes).toBe(0);
  expect(replication.lagHistory[1].bytes).toBe(51);
  expect(replication.lagHistory[LAG_HISTORY_MAX - 1].bytes).toBe(LAG_HISTORY_MAX + 49);
  recordSample(replication, sample(1, 7), false);
  expect(replication.lagHistory).toHaveLength(LAG_HISTORY_MAX);
});

test("the watch's live progress: the initial sync's share from the status, then the lag", () => {
  const steps = (running: string) =>
    ['initialSync', 'awaitCutover'].map((name) => ({
      name,
      title: name,
      state: name === running ? ('running' as const) : ('done' as const),
      startedAt: 0,
    }));
  const view = (running: string, latest: ReplicationSample) => ({
    workflowId: 'w',
    execution: 'RUNNING',
    // The pending activity is one of the workflow's samples: no step's heartbeat.
    progress: { activity: 'sampleReplication', attempt: 1 },
    status: { steps: steps(running), replication: { latest, lagHistory: [] } } as unknown as MigrationStatus,
  });
  expect(runningProgress(view('initialSync', sample(1, 0)), 10_000)).toEqual({
    title: 'initialSync',
    estimate: {
      label: 'initial sync',
      fraction: 0.5,
      amount: '1/2 tables, 1.0 MB of 2.0 MB in 1 database(s)',
      etaMs: 10_000,
    },
  });
  expect(runningProgress(view('awaitCutover', sample(2, 12_000)), 10_000)?.estimate).toEqual({
    label: 'replicating',
    amount: 'lag 12 kB, 12.0s',
  });
});
