// The dump's progress reaches `pgshift status` while the dump runs, within seconds: a real migration on the
// project's own worker, a real pg_dumpall. Two table locks hold the dump at two known points, so the test
// sees it in the middle of its work rather than hoping to catch a fast dump.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Client } from '@temporalio/client';
import { createLocalPlatform, type LocalPlatform } from '../src/platform/local';
import type { DatabaseConnection } from '../src/platform/platform';
import { validatePlan } from '../src/plan/load';
import { withClient } from '../src/pg/connection';
import { startMigration } from '../src/client/start';
import { fetchStatus, formatStatus, type StatusView } from '../src/client/status';
import type { ProgressDetails } from '../src/lib/progress-estimate';
import { connectTestClient, uniqueTaskQueue, uniqueWorkflowId } from './helpers/temporal';
import { type RunningWorker, startProjectWorker } from './helpers/worker';

const ENV = 'local';
// Well under the 48 s the SDK held heartbeats back by default (80 % of the 1-minute heartbeat timeout),
// and many times the few seconds they take now.
const FRESH_WITHIN_MS = 25_000;

let home: string;
let platform: LocalPlatform;
let client: Client;
let worker: RunningWorker;

beforeAll(async () => {
  home = await mkdtemp(join(tmpdir(), 'pgshift-progress-'));
  platform = createLocalPlatform({ home });
  client = await connectTestClient();
  worker = await startProjectWorker({
    taskQueue: uniqueTaskQueue('progress'),
    platforms: { local: platform },
    workDir: join(home, 'work'),
  });
});

afterAll(async () => {
  await worker?.stop();
  await platform?.destroy();
  await rm(home, { recursive: true, force: true });
});

/** An ACCESS EXCLUSIVE lock held in an open transaction: pg_dump waits for it before dumping that database. */
async function holdLock(conn: DatabaseConnection, database: string, table: string) {
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  let locked!: () => void;
  const isLocked = new Promise<void>((resolve) => (locked = resolve));
  const done = withClient(conn, database, async (c) => {
    await c.query('BEGIN');
    await c.query(`LOCK TABLE ${table} IN ACCESS EXCLUSIVE MODE`);
    locked();
    await released;
    await c.query('COMMIT');
  });
  await Promise.race([isLocked, done]);
  return async () => {
    release();
    await done;
  };
}

async function waitForView(
  id: string,
  what: string,
  timeoutMs: number,
  ok: (view: StatusView) => boolean,
): Promise<StatusView> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const view = await fetchStatus(client, id);
    if (ok(view)) return view;
    if (view.execution !== 'RUNNING') throw new Error(`${what}: the migration ended\n${formatStatus(view)}`);
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms\n${formatStatus(view)}`);
    await new Promise((r) => setTimeout(r, 1000));
  }
}

const dumped = (view: StatusView) => (view.progress?.details as ProgressDetails | undefined)?.bytes ?? 0;
const dumping = (view: StatusView) =>
  view.status?.currentStep === 'dump' && view.progress?.activity === 'dumpSource';

test('the status shows the dump growing while it runs, with its share of the source and an ETA', async () => {
  const handle = 'prog-src14';
  await platform.createDatabase({
    handle,
    environment: ENV,
    version: '14',
    diskSizeGb: 1,
    containerSizeMb: 1024,
    createdBy: 'test',
  });
  const conn = await platform.connect(handle, ENV);
  await withClient(conn, conn.database, async (c) => {
    await c.query(
      `CREATE TABLE first_held AS SELECT g AS id, repeat('x', 100) AS pad FROM generate_series(1, 20000) g`,
    );
    await c.query('CREATE DATABASE zz_second');
  });
  await withClient(conn, 'zz_second', (c) =>
    c.query(
      `CREATE TABLE second_held AS SELECT g AS id, repeat('y', 100) AS pad FROM generate_series(1, 20000) g`,
    ),
  );
  // The locks must hold the dump, not the schema test's own pg_dumpall before it: they are taken while the
  // workflow waits for its window, after the schema test and before the downtime.
  const windowStart = new Date(Date.now() + 90_000).toISOString().replace(/\.\d{3}Z$/, 'Z');
  const plan = validatePlan({
    platform: 'local',
    source: { handle, environment: ENV },
    target: { handle: 'prog-dst17', version: '17' },
    cutover: { confirm: true, timeout: '10m', onTimeout: 'abort', window: { start: windowStart } },
  });
  const id = uniqueWorkflowId('progress');
  await startMigration(client, plan, { id, taskQueue: worker.worker.options.taskQueue });
  let releaseFirst = async () => undefined as void;
  let releaseSecond = async () => undefined as void;
  try {
    await waitForView(id, 'the wait for the window', 600_000, (v) => v.status?.currentStep === 'awaitWindow');
    releaseFirst = await holdLock(conn, conn.database, 'first_held');
    releaseSecond = await holdLock(conn, 'zz_second', 'second_held');
    const waiting = await fetchStatus(client, id);
    // Too slow a machine to reach the window in 90 s would let the dump run unheld: say so, not something odd.
    expect(waiting.status?.currentStep).toBe('awaitWindow');

    const before = await waitForView(
      id,
      'the dump held by the first lock',
      600_000,
      (v) => dumping(v) && dumped(v) > 0,
    );
    const details = before.progress!.details as ProgressDetails;
    expect(details.sourceSizeBytes).toBeGreaterThan(0);
    expect(formatStatus(before)).toMatch(/Dump the data \(attempt 1\): dumping \d+% — .* of ~/);

    await releaseFirst();
    const after = await waitForView(
      id,
      'the bytes of the first database in the status',
      FRESH_WITHIN_MS,
      (v) => dumping(v) && dumped(v) > dumped(before) + 20000 * 100,
    );
    const later = after.progress!.details as ProgressDetails;
    expect(later.elapsedMs).toBeGreaterThan(details.elapsedMs!);
    // Both updates came while the step ran, and the rate and ETA follow from them.
    expect(after.status?.steps.find((s) => s.name === 'dump')?.state).toBe('running');
    expect(formatStatus(after)).toMatch(/dumping \d+% — .* of ~.*\/s, ETA /);

    // Ended at the cutover gate, where no activity runs: the terminate below leaves none to finish orphaned
    // (its completion would find no workflow, and the worker would say so on every run).
    await releaseSecond();
    await waitForView(id, 'the cutover gate', 600_000, (v) => v.status?.cutover.waiting === true);
  } finally {
    await releaseFirst().catch(() => undefined);
    await releaseSecond().catch(() => undefined);
    await client.workflow
      .getHandle(id)
      .terminate('test over')
      .catch(() => undefined);
  }
});
