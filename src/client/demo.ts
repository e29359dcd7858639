// `npm run demo`: a real migration of a PostgreSQL 14 database with a live writer app to PostgreSQL 17,
// through the workflow, on this machine. Flags: --yes (confirm the cutover without asking), --rehearse
// (first rehearse the migration on a copy of a fresh backup, and print its report), --online (method
// logical: the writer keeps writing to the source until the cutover, which is the only downtime).
import { createInterface } from 'node:readline/promises';
import { join } from 'node:path';
import { Command } from 'commander';
import type { Client } from '@temporalio/client';
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
import { watchDisplay } from './step-progress';
import { installQuietSdkLogger } from '../lib/sdk-logger';
import { RefusedError, runCommand } from './exit';
import { formatDuration } from '../lib/duration';
import { loadSampleData } from '../demo/sample-data';
import { withClient } from '../pg/connection';
import { cutoverSignal, type MigrationStatus, type MigrationSummary } from '../workflows/definitions';

const REPO = join(__dirname, '..', '..');
const PLAN_PATH = join(REPO, 'examples', 'plan.yaml');
const ONLINE_PLAN_PATH = join(REPO, 'examples', 'plan.online.yaml');
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

/** What each answer does, as the workflow does it: `y` is the cutover signal, `n` or Enter the abort. */
function cutoverQuestion(status: MigrationStatus): string[] {
  const { source, target } = status;
  if (status.method === 'logical') {
    return [
      `  y         cut over: the writer app stops, ${target} applies its last writes, DB_URL is pointed at it`,
      `            and the writer app starts on it (the downtime: a few seconds)`,
      `  n, Enter  abort: the migration rolls back — the writer app keeps running on ${source}, replication`,
      `            is dropped and ${target} removed — and the demo ends with exit code 1`,
    ];
  }
  return [
    `  y         cut over: DB_URL is pointed at ${target} and the writer app is scaled back up on it`,
    `  n, Enter  abort: the migration rolls back — DB_URL stays on ${source}, the writer app is scaled back up`,
    `            on ${source}, the dump and ${target} are removed — and the demo ends with exit code 1`,
  ];
}

/** Asks on the terminal, redrawing the prompt every second so the downtime counter keeps moving. */
async function askCutover(status: MigrationStatus): Promise<boolean> {
  for (const line of cutoverQuestion(status)) console.log(line);
  const rl = createInterface({ input: process.stdin, output: process.stdout });
  const since = status.downtime.startedAt;
  const prompt = () =>
    `${since !== undefined ? `[downtime ${formatDuration(Date.now() - since)}] ` : ''}Cut over to ${status.target}? [y/N] `;
  rl.setPrompt(prompt());
  rl.prompt();
  // Only a terminal can redraw a line; into a pipe or a file the prompt would repeat every second.
  const timer = process.stdout.isTTY
    ? setInterval(() => {
        rl.setPrompt(prompt());
        rl.prompt(true); // keeps what was typed so far
      }, 1000)
    : undefined;
  try {
    const answer = await new Promise<boolean>((resolve, reject) => {
      // Anything but yes or no is asked again: a typo must not roll a migration back.
      const onLine = (line: string) => {
        const text = line.trim();
        if (/^y(es)?$/i.test(text)) resolve(true);
        else if (text === '' || /^no?$/i.test(text)) resolve(false);
        else {
          console.log(
            `  "${text.slice(0, 20)}" is neither y nor n; answer y to cut over, n or Enter to roll back`,
          );
          rl.setPrompt(prompt());
          rl.prompt();
          rl.once('line', onLine);
        }
      };
      rl.once('line', onLine);
      // Ctrl-C or Ctrl-D is no answer: the migration keeps waiting, as for a client that went away.
      const noAnswer = () =>
        reject(
          new Error(
            `no answer: ${status.migrationId} still waits for its cutover; with a worker running ` +
              `(npm run pgshift -- worker), npm run pgshift -- cutover ${status.migrationId} (or abort)`,
          ),
        );
      rl.once('SIGINT', noAnswer);
      rl.once('close', noAnswer);
    });
    return answer;
  } finally {
    if (timer) clearInterval(timer);
    rl.close();
  }
}

async function confirmCutover(
  client: Client,
  id: string,
  yes: boolean,
  status: MigrationStatus,
): Promise<boolean> {
  console.log(`\n${formatStatus({ workflowId: id, execution: 'RUNNING', status })}\n`);
  let go = yes;
  if (!yes && process.stdin.isTTY) {
    go = await askCutover(status);
  } else if (!yes) {
    say('stdin is not a terminal: confirming the cutover automatically (run in a terminal to be asked)');
    go = true;
  }
  const handle = client.workflow.getHandle(id);
  if (go) await handle.signal(cutoverSignal, { by: 'demo' });
  else {
    say('cutover declined: the migration rolls back');
    await handle.signal('abort', { reason: 'cutover declined in the demo' });
  }
  return go;
}

async function followMigration(client: Client, id: string, yes: boolean): Promise<MigrationSummary> {
  // Every step's start and end from the step states, not the current step: a quick one would be missed.
  const display = await watchDisplay('demo: ');
  let asked = false;
  let declined = false;
  try {
    for (;;) {
      const view = await fetchStatus(client, id);
      const s = view.status;
      display.show(view);
      if (s?.cutover.waiting && !asked) {
        asked = true;
        display.stop(); // the bar would draw over the prompt
        declined = !(await confirmCutover(client, id, yes, s));
      }
      if (view.execution !== 'RUNNING') {
        display.stop();
        if (view.execution !== 'COMPLETED') {
          const why = declined ? 'rolled back as asked (cutover declined)' : view.execution;
          throw new Error(`migration ${why}:\n${formatStatus(view)}`);
        }
        return (await client.workflow.getHandle(id).result()) as MigrationSummary;
      }
      await new Promise((r) => setTimeout(r, 1000));
    }
  } finally {
    display.stop();
  }
}

/**
 * The promise of the demo, checked: no row written before the scale-down is missing, and the app writes to
 * the target. The writer wrote to the source until the scale-down (before the copy, during it and, online,
 * during the catch-up), so every row of the source's table must be on the target.
 */
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
  const lag = summary.replication?.lagHistory ?? [];
  if (lag.length > 0) {
    const start = lag[0].at;
    const points = lag.map((l) => `${formatDuration(l.at - start)}: ${formatBytes(l.bytes)}`);
    console.log(`  Replication lag (${lag.length} samples): ${points.slice(-12).join(', ')}`);
  }
  for (const w of summary.warnings) console.log(`  Warning: ${w}`);
  console.log(`  History: ${workflowUiUrl(temporalSettings(), id)}`);
}

function formatBytes(n: number): string {
  return n < 1024
    ? `${n} B`
    : n < 1024 * 1024
      ? `${(n / 1024).toFixed(1)} KiB`
      : `${(n / 1048576).toFixed(1)} MiB`;
}

async function demo(opts: DemoOptions): Promise<number> {
  if (opts.online && opts.rehearse) {
    // A rehearsal restores a backup and runs the dump method on it; it says nothing of the logical method.
    throw new RefusedError(
      '--online and --rehearse do not go together: the rehearsal rehearses the dump method',
    );
  }
  const home = resolvePgshiftHome();
  const plan = loadPlanFile(opts.online ? ONLINE_PLAN_PATH : PLAN_PATH);
  // The demo narrates the steps itself; the worker's INFO lines would drown them (PGSHIFT_LOG_LEVEL to see
  // them). Installed before ensureTemporal: without a Temporal CLI, the SDK's runtime starts the dev server.
  installQuietSdkLogger('WARN');
  await ensureTemporal(home);
  const platform = createLocalPlatform({ home });
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

interface DemoOptions {
  yes?: boolean;
  rehearse?: boolean;
  online?: boolean;
}

new Command('demo')
  .option('-y, --yes', 'confirm the cutover without asking')
  .option('--rehearse', 'rehearse the migration on a copy of a fresh backup first, and print its report')
  .option('--online', 'migrate by logical replication (examples/plan.online.yaml): downtime of seconds')
  .action((opts: DemoOptions) => runCommand(() => demo(opts)))
  .parseAsync(process.argv)
  .catch((err: Error) => {
    process.stderr.write(`demo: ${err.message}\n`);
    process.exitCode = 1;
  });
