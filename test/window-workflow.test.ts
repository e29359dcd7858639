// The downtime window on the real dev server (no time skipping), with stub activities that record when
// each was called: everything before the downtime runs at once, the scale-down waits for the window on a
// durable timer, an abort while waiting rolls back, and PgshiftPhase follows the phase.
import { Context } from '@temporalio/activity';
import type { Client, WorkflowHandle } from '@temporalio/client';
import type { MigrationActivities, MigrationInput } from '../src/activities/contract';
import { validatePlan } from '../src/plan/load';
import type { Plan } from '../src/plan/schema';
import {
  PHASE_ATTRIBUTE,
  abortSignal,
  statusQuery,
  type MigrationStatus,
} from '../src/workflows/definitions';
import type { migrationWorkflow } from '../src/workflows/migration';
import { connectTestClient, uniqueTaskQueue, uniqueWorkflowId, withTestWorker } from './helpers/temporal';
import { failureOf, inGuideOrder, recordingStubs } from './helpers/stubs';

type Name = keyof MigrationActivities;
type Impl = {
  [K in Name]: (...args: Parameters<MigrationActivities[K]>) => ReturnType<MigrationActivities[K]>;
};

/** Far enough ahead that the steps before the downtime are done by then, even on two busy cores. */
const LEAD_MS = 20_000;

function stubs() {
  const impl: Impl = {
    preflight: async () => ({
      sourceVersion: 14,
      targetVersion: 17,
      clientVersion: 17,
      sourceSizeBytes: 1_000_000,
      freeDiskBytes: 10_000_000_000,
      services: [{ app: 'shop', service: 'cmd', containerCount: 2 }],
      warnings: [],
    }),
    testSchema: async () => ({ skipped: false, expectedErrors: [] }),
    createTarget: async (input) => ({
      handle: input.plan.target.handle,
      environment: input.plan.target.environment,
      version: 17,
      foundExisting: false,
    }),
    scaleServicesDown: async () => undefined,
    claimWorkspace: async () => ({
      taskQueue: Context.current().info.taskQueue,
      host: 'test-host',
      dumpDir: '/work/dumps/m',
    }),
    pingWorkspace: async () => undefined,
    dumpSource: async () => ({ path: '/work/dump.sql', bytes: 4096, sha256: 'ab12', droppedStatements: 0 }),
    restoreTarget: async () => ({ expectedErrors: [] }),
    verifyTarget: async () => ({
      ok: true,
      databases: [],
      tablesCompared: 0,
      rowsVerified: 0,
      sequencesCompared: 0,
      mismatches: [],
    }),
    updateServiceConfig: async () => undefined,
    scaleServicesUp: async () => undefined,
    vacuumAnalyze: async () => ({ databases: [] }),
    deprovisionSource: async () => undefined,
    revertServiceConfig: async () => undefined,
    deprovisionTarget: async () => undefined,
    purgeTargetBackups: async () => ({ purged: [] }),
    removeDump: async () => undefined,
  };
  const calledAt = new Map<Name, number>();
  const timed = Object.fromEntries(
    (Object.keys(impl) as Name[]).map((name) => [
      name,
      (...args: never[]) => {
        if (!calledAt.has(name)) calledAt.set(name, Date.now());
        return (impl[name] as (...a: never[]) => Promise<unknown>)(...args);
      },
    ]),
  ) as unknown as Impl;
  const recorded = recordingStubs<Name>(timed);
  return { ...recorded, names: () => inGuideOrder(recorded.names()), calledAt };
}

function plan(cutover: Record<string, unknown>): Plan {
  return validatePlan({
    platform: 'local',
    source: { handle: 'shop-pg14' },
    target: { handle: 'shop-pg17', version: '17' },
    services: [{ app: 'shop', service: 'cmd' }],
    config: [{ app: 'shop', variable: 'DB_URL' }],
    cutover: { confirm: false, ...cutover },
  });
}

/** HH:MM:SS of `at` on the wall clock of `timeZone`. */
function wallTime(at: number, timeZone: string): string {
  return new Intl.DateTimeFormat('en-GB', {
    timeZone,
    hourCycle: 'h23',
    hour: '2-digit',
    minute: '2-digit',
    second: '2-digit',
  }).format(new Date(at));
}

let client: Client;
beforeAll(async () => {
  client = await connectTestClient();
});
afterAll(async () => {
  await client?.connection.close();
});

type Handle = WorkflowHandle<typeof migrationWorkflow>;

async function migrate<T>(p: Plan, activities: object, body: (handle: Handle) => Promise<T>): Promise<T> {
  const taskQueue = uniqueTaskQueue('window');
  return withTestWorker({ activities, taskQueue }, async () => {
    const workflowId = uniqueWorkflowId('window');
    const input: MigrationInput = { migrationId: workflowId, plan: p };
    const handle = await client.workflow.start<typeof migrationWorkflow>('migrationWorkflow', {
      taskQueue,
      workflowId,
      args: [input],
    });
    return body(handle);
  });
}

async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const value = await probe();
    if (value !== undefined) return value;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`timed out waiting for ${what}`);
}

const waiting = (handle: Handle): Promise<MigrationStatus> =>
  waitFor('the migration to wait for its window', async () => {
    const s = await handle.query(statusQuery);
    return s.phase === 'awaiting-window' ? s : undefined;
  });

const phaseAttribute = async (handle: Handle, phase: string): Promise<string> =>
  waitFor(`PgshiftPhase ${phase}`, async () => {
    const value = (await handle.describe()).typedSearchAttributes.get(PHASE_ATTRIBUTE);
    return value === phase ? value : undefined;
  });

const stepOf = (s: MigrationStatus, name: string) => s.steps.find((x) => x.name === name)!;

test('a one-off window: the steps before the downtime run at once, the scale-down waits for the start', async () => {
  const { activities, names, calledAt } = stubs();
  const start = Date.now() + LEAD_MS;
  const p = plan({ window: { start: new Date(start).toISOString() } });
  await migrate(p, activities, async (handle) => {
    const status = await waiting(handle);
    expect(names()).toEqual(['preflight', 'testSchema', 'createTarget']);
    expect(status.downtime.scheduledAt).toBe(start);
    expect(status.downtime.startedAt).toBeUndefined();
    expect(status.window).toMatchObject({ waiting: true, timeZone: 'UTC', estimateMs: expect.any(Number) });
    expect(status.currentStep).toBe('awaitWindow');
    expect(stepOf(status, 'awaitWindow')).toMatchObject({ state: 'running' });
    expect(stepOf(status, 'awaitWindow').detail).toMatch(
      /^waiting for the window: downtime starts at \d{4}-\d\d-\d\d \d\d:\d\d(:\d\d)? UTC \(in /,
    );
    await phaseAttribute(handle, 'awaiting-window');

    const summary = await handle.result();
    expect(summary.phase).toBe('completed');
    expect(calledAt.get('scaleServicesDown')).toBeGreaterThanOrEqual(start);
    expect(summary.downtime.startedAt).toBeGreaterThanOrEqual(start);
    expect(stepOf(summary, 'awaitWindow').state).toBe('done');
    expect(summary.window?.waiting).toBe(false);
    expect(summary.warnings).toEqual([]);
    await phaseAttribute(handle, 'completed');
  });
});

test('a daily window in a named zone: the scale-down waits for its start (Intl in the workflow sandbox)', async () => {
  const { activities, calledAt } = stubs();
  const zone = 'Europe/Berlin';
  // Whole seconds: the plan's times of day have a resolution of one second.
  const start = Math.ceil((Date.now() + LEAD_MS) / 1000) * 1000;
  const p = plan({
    window: { daily: { from: wallTime(start, zone), to: wallTime(start + 3_600_000, zone), timeZone: zone } },
  });
  await migrate(p, activities, async (handle) => {
    const status = await waiting(handle);
    expect(status.downtime.scheduledAt).toBe(start);
    expect(stepOf(status, 'awaitWindow').detail).toContain(` ${zone} (in `);
    expect(status.window).toMatchObject({ timeZone: zone, endsAt: start + 3_600_000 });
    const summary = await handle.result();
    expect(summary.phase).toBe('completed');
    expect(calledAt.get('scaleServicesDown')).toBeGreaterThanOrEqual(start);
  });
});

test('an estimate that does not fit in what is left of the window waits for the next one; abort rolls back', async () => {
  const { activities, names } = stubs();
  const zone = 'UTC';
  const now = Date.now();
  // In the window now, but only ~2 minutes of it are left: a 10m estimate waits for tomorrow's.
  const p = plan({
    downtimeEstimate: '10m',
    window: {
      daily: { from: wallTime(now - 3_600_000, zone), to: wallTime(now + 120_000, zone), timeZone: zone },
    },
  });
  await migrate(p, activities, async (handle) => {
    const status = await waiting(handle);
    expect(status.downtime.scheduledAt).toBeGreaterThan(now + 22 * 3_600_000);
    expect(status.window?.estimateMs).toBe(600_000);
    expect(status.window?.estimateBasis).toBe('plan.cutover.downtimeEstimate 10m');
    expect(status.warnings.join('\n')).toContain(
      'The estimated downtime (10m0s) does not fit in what is left of the current window',
    );

    await handle.signal(abortSignal, { reason: 'not tonight' });
    await failureOf(handle);
    // Nothing was scaled or dumped: only the target is removed.
    expect(names()).toEqual([
      'preflight',
      'testSchema',
      'createTarget',
      'deprovisionTarget',
      'purgeTargetBackups',
    ]);
    const after = await handle.query(statusQuery);
    expect(after.phase).toBe('rolled-back');
    expect(stepOf(after, 'awaitWindow').state).toBe('cancelled');
    expect(after.errors[0]).toContain('during "Wait for the downtime window": not tonight');
    expect(after.window?.waiting).toBe(false);
    await phaseAttribute(handle, 'rolled-back');
  });
});
