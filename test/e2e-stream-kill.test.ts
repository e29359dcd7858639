// Copy strategy stream, end to end and nothing stubbed: the worker process running the streamed restore is
// killed with SIGKILL while rows are flowing, as the OOM killer or a dead machine would; another worker on the
// same host and work directory carries on from the history. The target the killed attempt left half-written
// must be reset and streamed again, never taken for a whole copy, and no pg_dump or psql of the killed worker
// may be left running.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Client } from '@temporalio/client';
import { createLocalPlatform, type LocalPlatform } from '../src/platform/local';
import { startMigration } from '../src/client/start';
import { validatePlan } from '../src/plan/load';
import { withClient } from '../src/pg/connection';
import type { MigrationSummary } from '../src/workflows/definitions';
import { connectTestClient, uniqueTaskQueue, uniqueWorkflowId } from './helpers/temporal';
import { startWorkerProcess, type WorkerProcess } from './helpers/worker-process';
import { createLiveSource } from './helpers/live-source';
import { activityAttempts, activityStarted, statusWhen, stepOf, waitUntil } from './helpers/migration-waits';
import { snapshotDiff, snapshotServer } from './helpers/server-snapshot';
import { findProcesses } from './helpers/tool-processes';

const ENV = 'local';

let home: string;
let platform: LocalPlatform;
let client: Client;

beforeAll(async () => {
  home = await mkdtemp(join(tmpdir(), 'pgshift-e2e-stream-'));
  platform = createLocalPlatform({ home });
  client = await connectTestClient();
});

afterAll(async () => {
  await platform?.destroy();
  await rm(home, { recursive: true, force: true });
  await client?.connection.close();
});

test('kill -9 of the worker during a streamed restore: restored again from a reset target, content identical', async () => {
  // Its own task queue, served only by worker processes this test kills and replaces.
  const queue = uniqueTaskQueue('e2e-stream-kill');
  const processOptions = { taskQueue: queue, home, workDir: join(home, 'work') };
  const source = await createLiveSource(platform, {
    handle: 'st-kill14',
    environment: ENV,
    bulkTables: 4,
    bulkRows: 400_000,
  });
  const expected = await snapshotServer(source, { adminRole: platform.adminRole });

  let w: WorkerProcess = await startWorkerProcess(processOptions);
  try {
    const id = uniqueWorkflowId('stream-kill');
    const plan = validatePlan({
      platform: 'local',
      source: { handle: 'st-kill14', environment: ENV },
      target: { handle: 'st-kill17', version: '17' },
      copy: { strategy: 'stream' },
      cutover: { confirm: false },
      cleanup: { vacuumAnalyze: false },
    });
    await startMigration(client, plan, { id, taskQueue: queue });
    const handle = client.workflow.getHandle(id);

    await statusWhen(client, id, 'the restore', (s) => stepOf(s, 'restore').state === 'running');
    await activityStarted(handle, 'restoreTarget');
    const target = await platform.connect('st-kill17', ENV);
    // Rows are flowing into the target: killed now, the worker leaves it half-written.
    await waitUntil('rows flowing into the target', () =>
      withClient(target, 'postgres', async (c) => {
        const { rows } = await c.query<{ n: number }>(
          'SELECT count(*)::int AS n FROM pg_stat_progress_copy WHERE tuples_processed > 0',
        );
        return rows[0].n > 0;
      }),
    );
    await w.kill();
    w = await startWorkerProcess(processOptions);

    const summary = (await handle.result()) as MigrationSummary;
    expect(summary.phase).toBe('completed');
    expect(summary.errors).toEqual([]);
    expect(summary.verification?.ok).toBe(true);
    // The killed restore was sent again (by the workflow, after its ping found a worker there).
    expect((await activityAttempts(handle)).restoreTarget?.length).toBeGreaterThanOrEqual(2);
    expect(snapshotDiff(expected, await snapshotServer(target, { adminRole: platform.adminRole }))).toEqual(
      [],
    );
    // What the killed worker started ended with it: pg_dump on a broken pipe, psql at the end of its input.
    await waitUntil('the killed worker’s pg_dump and psql to end', async () => {
      const left = [
        ...(await findProcesses('pg_dump', String(source.port))),
        ...(await findProcesses('psql', String(target.port))),
      ];
      return left.length === 0;
    });
  } catch (err) {
    throw new Error(`${String(err)}\nworker process stderr (last):\n${w.stderr().slice(-4000)}`, {
      cause: err,
    });
  } finally {
    await w.stop();
  }
}, 900_000);
