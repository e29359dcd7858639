// pgshift end to end: the real workflow on the bench's dev server, run by the worker process, from the
// start request to its completion (the CLI's own start-up is not counted: see `npm run bench:cli`).
// method logical runs with the writer app writing to the source until the cutover.
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { WorkflowFailedError } from '@temporalio/client';
import { startMigration } from '../../src/client/start';
import { validatePlan } from '../../src/plan/load';
import type { PlanInput } from '../../src/plan/schema';
import {
  type MigrationStatus,
  type MigrationSummary,
  type StepStatus,
  statusQuery,
} from '../../src/workflows/definitions';
import { type BenchEnv, ENV, REPO } from './env';
import { eventIds, missingEvents, type Source } from './source';
import { timed } from './raw';

export const WRITER_APP = 'writer';
const WRITER_SERVICE = 'cmd';
const WRITER = join(REPO, 'src', 'demo', 'writer.js');

export type Method = 'dump' | 'logical';
export type Strategy = 'guide' | 'stream' | 'parallel';

export interface PgshiftRun {
  /** Start request → completed. */
  seconds: number;
  createSeconds?: number;
  dumpSeconds?: number;
  restoreSeconds?: number;
  /** method dump: dump + restore; method logical: the initial sync. */
  copySeconds?: number;
  verifyStepSeconds?: number;
  downtimeSeconds?: number;
  peakRssMiB: number;
  /** The worker's RSS as the run began (idle: no migration of its own running). */
  startRssMiB: number;
  writer?: { written: number; missing: number };
  /** Every step that ran, "name seconds", in order. */
  steps?: string;
  error?: string;
}

/** The writer app (the demo's), stopped; method logical's runs point it at the source and start it. */
export async function createWriterApp(env: BenchEnv): Promise<void> {
  await env.platform.createApp(WRITER_APP, { [WRITER_SERVICE]: `exec node ${JSON.stringify(WRITER)}` }, ENV);
}

function planFor(source: Source, target: string, method: Method, strategy: Strategy) {
  const input: PlanInput = {
    platform: 'local',
    source: { handle: source.handle, environment: ENV },
    target: { handle: target, version: '17' },
    method,
    cutover: { confirm: false },
    cleanup: { vacuumAnalyze: false },
  };
  if (method === 'dump') input.copy = { strategy };
  else {
    input.services = [{ app: WRITER_APP, service: WRITER_SERVICE }];
    input.config = [{ app: WRITER_APP, variable: 'DB_URL' }];
    // pgbench_history has no primary key, as in pgbench: the opt-in the online method asks for.
    input.accept = { replicaIdentityFull: ['pgbench.public.pgbench_history'] };
  }
  return validatePlan(input, 'bench plan');
}

const secondsOf = (s: StepStatus | undefined) =>
  s?.startedAt !== undefined && s.endedAt !== undefined && s.state === 'done'
    ? (s.endedAt - s.startedAt) / 1000
    : undefined;

/** The failure's chain of messages, then the status's errors. */
function failureText(err: unknown, status: MigrationStatus | undefined): string {
  const parts: string[] = [];
  for (let e: unknown = err; e instanceof Error && parts.length < 4; e = e.cause) {
    if (!(e instanceof WorkflowFailedError)) parts.push(e.message);
  }
  if (status?.errors.length) parts.push(...status.errors.slice(0, 2));
  return [...new Set(parts)].join(' | ').replace(/\s+/g, ' ').slice(0, 600) || String(err);
}

async function waitFor(check: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

async function startWriter(env: BenchEnv, source: Source): Promise<number> {
  const { platform } = env;
  await platform.setConfig(WRITER_APP, { DB_URL: source.conn.url }, ENV);
  const before = (await eventIds(source.conn)).length;
  await platform.scaleService(WRITER_APP, WRITER_SERVICE, 1, ENV);
  await waitFor(async () => (await eventIds(source.conn)).length >= before + 5, 60_000, 'the writer');
  return before;
}

/** One migration to a fresh target; the target is left for the caller to verify and remove. */
export async function runPgshift(
  env: BenchEnv,
  source: Source,
  target: string,
  method: Method,
  strategy: Strategy = 'guide',
): Promise<PgshiftRun> {
  const plan = planFor(source, target, method, strategy);
  const id = `bench-${target}-${randomBytes(3).toString('hex')}`;
  const writerBefore = method === 'logical' ? await startWriter(env, source) : undefined;
  const startRssMiB = env.worker.beginPeak();
  let summary: MigrationSummary | undefined;
  let failure: unknown;
  const [, seconds] = await timed(async () => {
    try {
      const handle = await startMigration(env.client, plan, { id });
      summary = await handle.result();
    } catch (err) {
      failure = err;
    }
  });
  const peakRssMiB = env.worker.endPeak();
  const status: MigrationStatus | undefined =
    summary ??
    (await env.client.workflow
      .getHandle(id)
      .query(statusQuery)
      .catch(() => undefined));
  const run: PgshiftRun = { seconds, peakRssMiB, startRssMiB };
  if (failure) run.error = failureText(failure, status);
  const step = (name: string) => secondsOf(status?.steps.find((s) => s.name === name));
  run.steps = status?.steps
    .map((s) => ({ name: s.name, seconds: secondsOf(s) }))
    .filter((s) => s.seconds !== undefined)
    .map((s) => `${s.name} ${s.seconds!.toFixed(1)}`)
    .join(', ');
  run.createSeconds = step('createTarget');
  run.verifyStepSeconds = step('verify');
  if (method === 'dump') {
    run.dumpSeconds = step('dump');
    run.restoreSeconds = step('restore');
    if (run.dumpSeconds !== undefined && run.restoreSeconds !== undefined)
      run.copySeconds = run.dumpSeconds + run.restoreSeconds;
  } else {
    run.copySeconds = step('initialSync');
    if (status && status.method !== 'logical')
      run.error ??= `the workflow ran method ${status.method ?? 'dump'}: method logical is not implemented yet`;
  }
  if (summary?.downtimeMs !== undefined) run.downtimeSeconds = summary.downtimeMs / 1000;
  if (writerBefore !== undefined) run.writer = await checkWriter(env, source, target, writerBefore);
  return run;
}

/** Stops the writer (wherever it runs now) and counts the rows it wrote to the source that the target lacks. */
async function checkWriter(
  env: BenchEnv,
  source: Source,
  target: string,
  before: number,
): Promise<{ written: number; missing: number }> {
  await env.platform.scaleService(WRITER_APP, WRITER_SERVICE, 0, ENV);
  const ids = await eventIds(source.conn);
  const exists = await env.platform.getDatabase(target, ENV);
  const missing = exists ? await missingEvents(await env.platform.connect(target, ENV), ids) : ids.length;
  return { written: ids.length - before, missing };
}
