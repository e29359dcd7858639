import { Command, InvalidArgumentError } from 'commander';
import { runCommand, RefusedError } from './exit';
import type { StatusView } from './status';
import type { WorkflowHandle } from '@temporalio/client';
import { localCommand } from './local-command';
import { workflowIdProblem } from './migration-id';
import { parseDuration } from '../lib/duration';
import { temporalSettings, workflowUiUrl } from '../temporal/connection';
import {
  abortSignal,
  cutoverSignal,
  deprovisionSourceSignal,
  keepSourceSignal,
} from '../workflows/definitions';
import { REHEARSAL_WORKFLOW_TYPE } from '../workflows/rehearsal-definitions';

// A command loads the Temporal SDK (a third of a second) and the worker (more) when it runs, not before:
// `pgshift --help` and a mistyped flag answer at once.
const connectClient = async () => (await import('./temporal-client')).connectClient();
const fetchStatus: typeof import('./status').fetchStatus = async (...args) =>
  (await import('./status')).fetchStatus(...args);
const startMigration: typeof import('./start').startMigration = async (...args) =>
  (await import('./start')).startMigration(...args);
const rehearseCommand: typeof import('./rehearse').rehearseCommand = async (...args) =>
  (await import('./rehearse')).rehearseCommand(...args);
const listMigrations: typeof import('./list').listMigrations = async (...args) =>
  (await import('./list')).listMigrations(...args);
const runWorker = async () => (await import('./dev')).runWorker();
const runDev: typeof import('./dev').runDev = async (...args) => (await import('./dev')).runDev(...args);

const program = new Command('pgshift')
  .description('Durable PostgreSQL dump-and-restore migrations on Temporal')
  .showHelpAfterError()
  .exitOverride((err) => {
    // Commander's own usage errors are bad input: exit code 2 (help and version exit 0).
    process.exit(err.exitCode === 0 ? 0 : 2);
  });

program
  .command('start')
  .description('validate a plan and start its migration')
  .requiredOption('-f, --file <plan>', 'plan file (YAML or JSON)')
  .option(
    '--id <id>',
    'workflow id (default: derived from platform, environment and source)',
    parseWorkflowId,
  )
  .option('--wait', 'wait for the migration to finish, showing its progress')
  .option(
    '--downtime-estimate <duration>',
    'the expected downtime, e.g. a rehearsal\'s estimate ("90s"): overrides plan.cutover.downtimeEstimate',
    parseDowntimeEstimate,
  )
  .action((opts: { file: string; id?: string; wait?: boolean; downtimeEstimate?: string }) =>
    runCommand(async () => {
      const plan = (await import('../plan/load')).loadPlanFile(opts.file);
      if (opts.downtimeEstimate) plan.cutover.downtimeEstimate = opts.downtimeEstimate;
      const client = await connectClient();
      const handle = await startMigration(client, plan, { id: opts.id });
      console.log(`Started migration ${handle.workflowId}`);
      console.log(`History: ${workflowUiUrl(temporalSettings(), handle.workflowId)}`);
      if (!opts.wait) return;
      return watch(handle.workflowId);
    }),
  );

program
  .command('rehearse')
  .description(
    "rehearse a plan's migration on a copy of production's latest backup: timings, a downtime estimate, " +
      'restore errors; production is never written to, and everything created is removed',
  )
  .requiredOption('-f, --file <plan>', 'plan file (YAML or JSON), the same as for start')
  .option(
    '--id <id>',
    'workflow id (default: pgshift-rehearsal-<platform>-<environment>-<source>)',
    parseWorkflowId,
  )
  .option('--wait', 'wait for the report (exit 0: ok, 1: problems found or the rehearsal failed)')
  .option('--json', 'machine-readable output')
  .action((opts: { file: string; id?: string; wait?: boolean; json?: boolean }) =>
    runCommand(() => rehearseCommand(opts)),
  );

async function watch(workflowId: string, once = false, json = false): Promise<number> {
  const { formatStatus } = await import('./status');
  const { watchDisplay } = await import('./step-progress');
  const client = await connectClient();
  // Each step is a line as it starts and ends, with a live progress bar (a periodic line without a
  // terminal), then the full status.
  const display = once || json ? undefined : await watchDisplay();
  for (;;) {
    const view = await fetchStatus(client, workflowId);
    const running = view.execution === 'RUNNING';
    if (json) {
      if (!running || once) {
        console.log(JSON.stringify(view, null, 2));
      }
    } else {
      display?.show(view);
      if (!running || once) {
        display?.stop();
        console.log(formatStatus(view));
      }
    }
    if (!running || once) return view.execution === 'COMPLETED' || running ? 0 : 1;
    await new Promise((r) => setTimeout(r, 2000));
  }
}

program
  .command('status')
  .description("a migration's steps, timings, copy progress, downtime, verification and errors")
  .argument('<id>', 'migration (workflow) id', parseWorkflowId)
  .option('--watch', 'refresh until the migration ends')
  .option('--json', 'machine-readable output')
  .action((id: string, opts: { watch?: boolean; json?: boolean }) =>
    runCommand(() => watch(id, !opts.watch, opts.json)),
  );

/**
 * Sends a signal only when the migration is in a state where it means something; otherwise refuses
 * with the reason (exit 2) and sends nothing, so a stray signal never lands in the history.
 */
async function signalWhen(
  id: string,
  refusal: (view: StatusView) => string | undefined,
  send: (handle: WorkflowHandle) => Promise<void>,
  done: string,
): Promise<void> {
  const client = await connectClient();
  const view = await fetchStatus(client, id);
  const reason =
    view.execution !== 'RUNNING'
      ? `it is not running (${view.execution})`
      : view.workflowType === REHEARSAL_WORKFLOW_TYPE
        ? `it is a rehearsal, which takes no signals (to stop it, cancel it: \`temporal workflow cancel -w ${id}\`; it cleans up)`
        : refusal(view);
  if (reason) throw new RefusedError(`migration ${id}: ${reason}; nothing sent`);
  await send(client.workflow.getHandle(id));
  console.log(done);
}

program
  .command('cutover')
  .description('confirm the cutover of a migration waiting for it')
  .argument('<id>', 'migration (workflow) id', parseWorkflowId)
  .action((id: string) =>
    runCommand(() =>
      signalWhen(
        id,
        (view) =>
          view.status?.cutover.waiting
            ? undefined
            : `it is not waiting for cutover${view.status?.currentStep ? ` (step ${view.status.currentStep})` : ''}`,
        (handle) => handle.signal(cutoverSignal, { by: process.env.USER }),
        `Cutover confirmed for ${id}.`,
      ),
    ),
  );

program
  .command('abort')
  .description('roll a migration back (before its point of no return)')
  .argument('<id>', 'migration (workflow) id', parseWorkflowId)
  .option('--reason <text>', 'why, for the history')
  .action((id: string, opts: { reason?: string }) =>
    runCommand(() =>
      signalWhen(
        id,
        (view) =>
          view.status?.pointOfNoReturn
            ? 'it is past its point of no return: services already run on the target, so it cannot be rolled back'
            : undefined,
        (handle) => handle.signal(abortSignal, { reason: opts.reason ?? 'aborted by operator' }),
        `Abort sent to ${id}; it rolls back now (pgshift status ${id} --watch).`,
      ),
    ),
  );

const notAwaitingSourceDeprovision = (view: StatusView) =>
  view.status?.phase === 'awaiting-source-deprovision'
    ? undefined
    : 'it is not waiting to deprovision its source';

for (const { name, description, signal, done } of [
  {
    name: 'deprovision-source',
    description: 'confirm deprovisioning the source (plan: cleanup.deprovisionSource.mode = signal)',
    signal: deprovisionSourceSignal,
    done: (id: string) => `Source deprovisioning confirmed for ${id}.`,
  },
  {
    name: 'keep-source',
    description: 'cancel a pending deprovisioning of the source',
    signal: keepSourceSignal,
    done: (id: string) => `The source of ${id} is kept.`,
  },
]) {
  program
    .command(name)
    .description(description)
    .argument('<id>', 'migration (workflow) id', parseWorkflowId)
    .action((id: string) =>
      runCommand(() =>
        signalWhen(id, notAwaitingSourceDeprovision, (handle) => handle.signal(signal), done(id)),
      ),
    );
}

program
  .command('list')
  .description('migrations and rehearsals known to the Temporal server')
  .option('--json', 'machine-readable output')
  .action((opts: { json?: boolean }) => runCommand(() => listMigrations(opts.json ?? false)));

program
  .command('worker')
  .description('run a worker for the migration task queue')
  .action(() => runCommand(runWorker));

program
  .command('dev')
  .description(
    'a local Temporal dev server (UI on, history kept under the pgshift home) plus a worker, until Ctrl-C',
  )
  .option('--port <port>', 'frontend port', parsePort, 7233)
  .option('--ui-port <port>', 'Web UI port', parsePort, 8233)
  .action((opts: { port: number; uiPort: number }) => runCommand(() => runDev(opts)));

program.addCommand(localCommand());

function parseWorkflowId(value: string): string {
  const problem = workflowIdProblem(value);
  if (problem) throw new InvalidArgumentError(`a workflow id ${problem}.`);
  return value;
}

function parseDowntimeEstimate(value: string): string {
  if (parseDuration(value) === undefined) {
    throw new InvalidArgumentError('must be a duration such as "90s", "20m" or "2h".');
  }
  return value;
}

function parsePort(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 65535) throw new InvalidArgumentError('must be a port number');
  return n;
}

program.parseAsync(process.argv).catch((err: Error) => {
  process.stderr.write(`pgshift: ${err.message}\n`);
  process.exitCode = 1;
});
