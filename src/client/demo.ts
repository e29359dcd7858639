// `npm run demo`: a real migration of a PostgreSQL 14 database with a live writer app to PostgreSQL 17,
// through the workflow, on this machine. Flags: --yes (confirm the cutover without asking), --rehearse
// (first rehearse the migration on a copy of a fresh backup, and print its report).
import { createInterface } from 'node:readline/promises';
import { join } from 'node:path';
import { Command } from 'commander';
import type { Client } from '@temporalio/client';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { loadPlanFile } from '../plan/load';
import type { Plan } from '../plan/schema';
import { createLocalPlatform, resolvePgshiftHome, type LocalPlatform } from '../platform/local';
import { createPgshiftWorker } from '../worker/run-worker';
import { isPortOpen, startDevServer } from '../temporal/dev-server';
import { temporalSettings, uiPort, workflowUiUrl } from '../temporal/connection';
import { connectClient } from './temporal-client';
import { startMigration } from './start';
import { rehearsalIdFor, startRehearsal, waitForRehearsal } from './rehearse';
import { formatReport } from './rehearsal-report';
import { copyHandleOf, rehearsalTargetHandleOf } from '../lib/rehearsal-handles';
import { migrationIdFor } from './migration-id';
import { fetchStatus, formatStatus } from './status';
import { runCommand } from './exit';
import { formatDuration } from '../lib/duration';
import { loadSampleData } from '../demo/sample-data';
import { withClient } from '../pg/connection';
import { cutoverSignal, type MigrationStatus, type MigrationSummary } from '../workflows/definitions';

const REPO = join(__dirname, '..', '..');
const PLAN_PATH = join(REPO, 'examples', 'plan.yaml');
const WRITER = join(REPO, 'src', 'demo', 'writer.js');

const say = (line: string) => console.log(`demo: ${line}`);

async function ensureTemporal(home: string): Promise<void> {
  const settings = temporalSettings();
  const [host, port] = settings.address.split(':');
  if (await isPortOpen(host, Number(port))) {
    say(`using the Temporal server at ${settings.address}`);
    return;
  }
  say('starting a Temporal dev server (left running so the Web UI keeps the history)...');
  const server = await startDevServer({ home, port: Number(port), uiPort: uiPort(), detached: true });
  process.env.TEMPORAL_ADDRESS = server.address;
  say(`Temporal dev server on ${server.address} (pid ${server.pid}), Web UI ${server.uiUrl}`);
}

/** Starts from a clean slate, so the demo can run again and again. */
async function resetDemo(platform: LocalPlatform, plan: Plan): Promise<void> {
  for (const s of plan.services) {
    await platform.scaleService(s.app, s.service, 0, plan.source.environment).catch(() => undefined);
  }
  await platform.deprovisionDatabase(plan.target.handle, plan.target.environment);
  await platform.deprovisionDatabase(plan.source.handle, plan.source.environment);
  // What an interrupted rehearsal of an earlier run may have left (a finished one leaves nothing).
  await platform.deprovisionDatabase(copyHandleOf(plan), plan.source.environment);
  await platform.deprovisionDatabase(rehearsalTargetHandleOf(plan), plan.target.environment);
  // The earlier sources' backups (taken by --rehearse) are orphaned now: they would pile up run after run.
  const ours = new Set([plan.source.handle, copyHandleOf(plan), rehearsalTargetHandleOf(plan)]);
  for (const b of await platform.listOrphanedBackups(plan.source.environment)) {
    if (ours.has(b.databaseHandle)) await platform.purgeBackup(b.id);
  }
}

/** The guide's "Test the upgrade": a backup of the source, then a rehearsal on a copy of it. */
async function rehearse(
  platform: LocalPlatform,
  client: Client,
  plan: Plan,
  stamp: string,
): Promise<boolean> {
  say(`taking a backup of ${plan.source.handle} for the rehearsal...`);
  const backup = await platform.createBackup(plan.source.handle, plan.source.environment);
  say(`backup ${backup.id} taken; rehearsing the migration on a copy of it (production is only read)...`);
  const handle = await startRehearsal(client, plan, { id: `${rehearsalIdFor(plan)}-${stamp}` });
  say(`rehearsal ${handle.workflowId}; history: ${workflowUiUrl(temporalSettings(), handle.workflowId)}`);
  const outcome = await waitForRehearsal(client, handle.workflowId, (line) => say(line));
  if (!('report' in outcome)) throw new Error(`the rehearsal failed: ${outcome.failure}`);
  console.log(`\n${formatReport(outcome.report)}\n`);
  return outcome.report.ok;
}

async function provisionSource(platform: LocalPlatform, plan: Plan): Promise<void> {
  const { source } = plan;
  say(`creating the source ${source.handle} (PostgreSQL 14) with sample data...`);
  await platform.createDatabase({
    handle: source.handle,
    environment: source.environment,
    version: '14',
    diskSizeGb: 1,
    containerSizeMb: 1024,
    createdBy: 'pgshift-demo',
  });
  const conn = await platform.connect(source.handle, source.environment);
  await loadSampleData(conn);
  const services = Object.fromEntries(
    plan.services.map((s) => [s.service, `exec node ${JSON.stringify(WRITER)}`]),
  );
  for (const app of new Set(plan.services.map((s) => s.app))) {
    await platform.createApp(app, services, source.environment);
  }
  for (const c of plan.config)
    await platform.setConfig(c.app, { [c.variable]: conn.url }, source.environment);
  for (const s of plan.services) await platform.scaleService(s.app, s.service, 1, source.environment);
  say('the writer app is running against the source; waiting for its first rows...');
  await waitFor(async () => (await countEvents(platform, source.handle, source.environment)) >= 20, 30_000);
}

async function countEvents(platform: LocalPlatform, handle: string, env: string): Promise<number> {
  const conn = await platform.connect(handle, env);
  return withClient(conn, conn.database, async (c) =>
    Number((await c.query('SELECT count(*) FROM events')).rows[0].count),
  );
}

async function waitFor(check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs / 1000}s`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

async function confirmCutover(
  client: Client,
  id: string,
  yes: boolean,
  status: MigrationStatus,
): Promise<void> {
  console.log(`\n${formatStatus({ workflowId: id, execution: 'RUNNING', status })}\n`);
  let go = yes;
  if (!yes && process.stdin.isTTY) {
    const rl = createInterface({ input: process.stdin, output: process.stdout });
    const answer = await rl.question(`Cut over to ${status.target}? [y/N] `);
    rl.close();
    go = /^y(es)?$/i.test(answer.trim());
  } else if (!yes) {
    say('stdin is not a terminal: confirming the cutover automatically (run in a terminal to be asked)');
    go = true;
  }
  const handle = client.workflow.getHandle(id);
  if (go) await handle.signal(cutoverSignal, { by: 'demo' });
  else await handle.signal('abort', { reason: 'cutover declined in the demo' });
}

async function followMigration(client: Client, id: string, yes: boolean): Promise<MigrationSummary> {
  let lastStep: string | undefined;
  let confirmed = false;
  for (;;) {
    const view = await fetchStatus(client, id);
    const s = view.status;
    if (s?.currentStep && s.currentStep !== lastStep) {
      lastStep = s.currentStep;
      say(`step: ${s.steps.find((x) => x.name === lastStep)?.title ?? lastStep}`);
    }
    if (s?.cutover.waiting && !confirmed) {
      confirmed = true;
      await confirmCutover(client, id, yes, s);
    }
    if (view.execution !== 'RUNNING') {
      if (view.execution !== 'COMPLETED')
        throw new Error(`migration ${view.execution}:\n${formatStatus(view)}`);
      return (await client.workflow.getHandle(id).result()) as MigrationSummary;
    }
    await new Promise((r) => setTimeout(r, 500));
  }
}

/** The promise of the demo, checked: no row written before the scale-down is missing, and the app writes to the target. */
async function checkOutcome(platform: LocalPlatform, plan: Plan): Promise<string[]> {
  const { source, target } = plan;
  const src = await platform.connect(source.handle, source.environment);
  const dst = await platform.connect(target.handle, target.environment);
  const srcIds = await withClient(src, src.database, async (c) =>
    (await c.query('SELECT id FROM events')).rows.map((r) => r.id),
  );
  const maxSource = srcIds.reduce((m, id) => (BigInt(id) > m ? BigInt(id) : m), 0n);
  const missing = await withClient(dst, dst.database, async (c) => {
    const res = await c.query('SELECT count(*) AS n FROM events WHERE id = ANY($1::bigint[])', [srcIds]);
    return srcIds.length - Number(res.rows[0].n);
  });
  await waitFor(
    () =>
      withClient(
        dst,
        dst.database,
        async (c) =>
          Number(
            (await c.query('SELECT count(*) FROM events WHERE id > $1', [maxSource.toString()])).rows[0]
              .count,
          ) > 0,
      ),
    30_000,
  );
  const config = await platform.getConfig(plan.config[0].app, source.environment);
  const pointsAtTarget = config[plan.config[0].variable] === dst.url;
  return [
    `rows the writer wrote before the scale-down: ${srcIds.length}, missing on the target: ${missing}`,
    `the writer is running against ${target.handle} (${pointsAtTarget ? 'DB_URL points at the target' : 'DB_URL does NOT point at the target'}) and has written new rows there`,
    ...(missing === 0 && pointsAtTarget ? [] : ['FAILED']),
  ];
}

function printSummary(summary: MigrationSummary, id: string): void {
  console.log('\nSummary');
  for (const s of summary.steps) {
    const took = s.startedAt && s.endedAt ? formatDuration(s.endedAt - s.startedAt) : '';
    console.log(`  ${s.title.padEnd(40)} ${s.state.padEnd(8)} ${took}`);
  }
  console.log(
    `  Downtime (services at zero): ${summary.downtimeMs !== undefined ? formatDuration(summary.downtimeMs) : 'n/a'}`,
  );
  console.log(`  Rows verified: ${summary.rowsVerified}`);
  console.log(`  History: ${workflowUiUrl(temporalSettings(), id)}`);
}

async function demo(opts: { yes?: boolean; rehearse?: boolean }): Promise<number> {
  const home = resolvePgshiftHome();
  const plan = loadPlanFile(PLAN_PATH);
  await ensureTemporal(home);
  const platform = createLocalPlatform({ home });
  // The demo narrates the steps itself; the worker's INFO lines would drown them (PGSHIFT_LOG_LEVEL to see them).
  Runtime.install({ logger: new DefaultLogger((process.env.PGSHIFT_LOG_LEVEL as 'INFO') ?? 'WARN') });
  const worker = await createPgshiftWorker({ platforms: { local: platform } });
  const running = worker.run();
  try {
    await resetDemo(platform, plan);
    await provisionSource(platform, plan);
    const client = await connectClient();
    // The demo starts over each time, so each run is a migration of its own.
    const stamp = new Date()
      .toISOString()
      .replace(/[-:]|\.\d+Z$/g, '')
      .replace('T', '-');
    if (opts.rehearse && !(await rehearse(platform, client, plan, stamp))) {
      say('the rehearsal found problems (see its report): not migrating');
      return 1;
    }
    const id = `${migrationIdFor(plan)}-${stamp}`;
    const handle = await startMigration(client, plan, { id });
    say(
      `migration ${handle.workflowId} started; history: ${workflowUiUrl(temporalSettings(), handle.workflowId)}`,
    );
    const summary = await followMigration(client, handle.workflowId, opts.yes ?? false);
    printSummary(summary, handle.workflowId);
    const outcome = await checkOutcome(platform, plan);
    for (const line of outcome) say(line);
    say(
      'the writer app and both databases are left running: `npm run pgshift -- local apps`, `... local down` stops them',
    );
    return outcome.includes('FAILED') ? 1 : 0;
  } finally {
    worker.shutdown();
    await running;
  }
}

new Command('demo')
  .option('-y, --yes', 'confirm the cutover without asking')
  .option('--rehearse', 'rehearse the migration on a copy of a fresh backup first, and print its report')
  .action((opts: { yes?: boolean; rehearse?: boolean }) => runCommand(() => demo(opts)))
  .parseAsync(process.argv)
  .catch((err: Error) => {
    process.stderr.write(`demo: ${err.message}\n`);
    process.exitCode = 1;
  });
