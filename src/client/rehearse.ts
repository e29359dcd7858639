// `pgshift rehearse`: starts a rehearsal of a plan's migration (see src/workflows/rehearsal.ts), and with
// --wait follows it to its report. Exit codes: 0 the report is ok, 1 it found problems or the rehearsal
// failed, 2 bad input (nothing started).
import {
  CancelledFailure,
  WorkflowExecutionAlreadyStartedError,
  WorkflowFailedError,
  type Client,
  type WorkflowHandle,
} from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import type { MigrationInput } from '../activities/contract';
import { BadInputError } from '../errors';
import { rehearsalHandleConflict } from '../lib/rehearsal-handles';
import { loadPlanFile } from '../plan/load';
import type { Plan } from '../plan/schema';
import { temporalSettings, workflowUiUrl } from '../temporal/connection';
import { TASK_QUEUE, type StepStatus } from '../workflows/definitions';
import {
  REHEARSAL_WORKFLOW_TYPE,
  rehearsalStatusQuery,
  type RehearsalFailureDetails,
  type RehearsalReport,
} from '../workflows/rehearsal-definitions';
import type { rehearsalWorkflow } from '../workflows';
import { RefusedError } from './exit';
import { checkWorkflowId, SUPPORTED_PLATFORMS } from './migration-id';
import { formatReport } from './rehearsal-report';
import { ensureSearchAttributes, sourceSearchAttribute, type StartOptions } from './start';
import { connectClient } from './temporal-client';

/** Its own id space: a rehearsal never blocks (nor is blocked by) the migration of the same source. */
export function rehearsalIdFor(plan: Plan): string {
  return `pgshift-rehearsal-${plan.platform}-${plan.source.environment}-${plan.source.handle}`;
}

/** What can be refused without Temporal: exit 2 before anything is started. */
export function checkRehearsable(plan: Plan): void {
  if (!SUPPORTED_PLATFORMS.includes(plan.platform)) {
    throw new BadInputError(
      `platform "${plan.platform}" is not available in this version of pgshift (available: ${SUPPORTED_PLATFORMS.join(', ')})`,
    );
  }
  const conflict = rehearsalHandleConflict(plan);
  if (conflict) throw new BadInputError(`the plan cannot be rehearsed: ${conflict}`);
}

export async function startRehearsal(
  client: Client,
  plan: Plan,
  options: StartOptions = {},
): Promise<WorkflowHandle<typeof rehearsalWorkflow>> {
  checkRehearsable(plan);
  const rehearsalId = checkWorkflowId(options.id ?? rehearsalIdFor(plan));
  const input: MigrationInput = { migrationId: rehearsalId, plan };
  const searchAttributes = await ensureSearchAttributes(client);
  try {
    return await client.workflow.start<typeof rehearsalWorkflow>(REHEARSAL_WORKFLOW_TYPE, {
      workflowId: rehearsalId,
      taskQueue: options.taskQueue ?? TASK_QUEUE,
      args: [input, { searchAttributes }],
      workflowIdConflictPolicy: 'FAIL',
      // Unlike a migration, a rehearsal can be run again and again: each run removes what it created.
      workflowIdReusePolicy: 'ALLOW_DUPLICATE',
      staticSummary: `Rehearse ${plan.source.handle} → PostgreSQL ${plan.target.version} on a copy (${plan.platform})`,
      ...sourceSearchAttribute(plan, searchAttributes),
    });
  } catch (err) {
    if (err instanceof WorkflowExecutionAlreadyStartedError) {
      throw new RefusedError(
        `a rehearsal of ${plan.source.handle} is already running as ${rehearsalId}; ` +
          `see \`pgshift status ${rehearsalId}\``,
      );
    }
    throw err;
  }
}

export type RehearsalOutcome =
  { report: RehearsalReport } | { failure: string; cancelled: boolean; cleanup?: StepStatus[] };

const QUERY_DEADLINE_MS = 5000;
const POLL_MS = 1000;

/** Waits for the rehearsal's end, telling `progress` each step it enters. */
export async function waitForRehearsal(
  client: Client,
  rehearsalId: string,
  progress: (line: string) => void = () => undefined,
): Promise<RehearsalOutcome> {
  const handle = client.workflow.getHandle<typeof rehearsalWorkflow>(rehearsalId);
  let ended = false;
  const outcome = handle
    .result()
    .then((report): RehearsalOutcome => ({ report }), outcomeOfFailure)
    .finally(() => (ended = true));
  let lastStep: string | undefined;
  while (!ended) {
    try {
      const status = await client.connection.withDeadline(Date.now() + QUERY_DEADLINE_MS, () =>
        handle.query(rehearsalStatusQuery),
      );
      const current = status.currentStep;
      if (current && current !== lastStep) {
        lastStep = current;
        const title = [...status.steps, ...status.cleanup].find((s) => s.name === current)?.title ?? current;
        progress(`rehearsal: ${status.phase === 'cleaning-up' ? 'cleanup: ' : ''}${title}`);
      }
    } catch {
      // No worker answered yet (or the rehearsal just ended): the result below still comes.
    }
    await Promise.race([outcome, new Promise((r) => setTimeout(r, POLL_MS))]);
  }
  return outcome;
}

function outcomeOfFailure(err: unknown): RehearsalOutcome {
  if (!(err instanceof WorkflowFailedError)) throw err;
  const cause = err.cause;
  if (cause instanceof CancelledFailure) {
    return { failure: cause.message || 'the rehearsal was cancelled', cancelled: true };
  }
  if (cause instanceof ApplicationFailure) {
    const details = cause.details?.[0] as RehearsalFailureDetails | undefined;
    return { failure: cause.message, cancelled: false, cleanup: details?.cleanup };
  }
  return { failure: cause?.message ?? err.message, cancelled: false };
}

export interface RehearseOptions {
  file: string;
  id?: string;
  wait?: boolean;
  json?: boolean;
}

/** The `pgshift rehearse` command: returns its exit code. */
export async function rehearseCommand(opts: RehearseOptions): Promise<number> {
  // Everything that can be refused is refused before Temporal is contacted.
  const plan = loadPlanFile(opts.file);
  checkRehearsable(plan);
  const client = await connectClient();
  const handle = await startRehearsal(client, plan, { id: opts.id });
  const id = handle.workflowId;
  const history = workflowUiUrl(temporalSettings(), id);
  // With --json, stdout holds JSON only; the narration goes to stderr.
  const say = opts.json
    ? (text: string) => process.stderr.write(`${text}\n`)
    : (text: string) => console.log(text);
  say(`Started rehearsal ${id}`);
  say(`History: ${history}`);
  if (!opts.wait) {
    if (opts.json) console.log(JSON.stringify({ rehearsalId: id, history }, null, 2));
    else say(`Its report, once it ends: pgshift status ${id}`);
    return 0;
  }
  const outcome = await waitForRehearsal(client, id, say);
  if ('report' in outcome) {
    console.log(opts.json ? JSON.stringify(outcome.report, null, 2) : formatReport(outcome.report));
    return outcome.report.ok ? 0 : 1;
  }
  if (opts.json) {
    console.log(JSON.stringify({ rehearsalId: id, ok: false, ...outcome }, null, 2));
  } else {
    console.log(`Rehearsal ${id} ${outcome.cancelled ? 'was cancelled' : 'FAILED'}: ${outcome.failure}`);
    for (const c of outcome.cleanup ?? []) {
      console.log(
        `  cleanup: ${c.title}: ${c.state}${c.error ? ` (${c.error})` : ''}${c.detail ? ` — ${c.detail}` : ''}`,
      );
    }
    console.log(`History: ${history}`);
  }
  return 1;
}
