import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import { NotFoundError } from '../errors';
import { defaultPayloadConverter } from '@temporalio/common';
import { formatDuration } from '../lib/duration';
import { estimateProgress, formatBytes, formatProgressLine } from '../lib/progress-estimate';
import type { MigrationStatus, StepStatus } from '../workflows/definitions';
import { statusQuery } from '../workflows/definitions';
import {
  REHEARSAL_WORKFLOW_TYPE,
  rehearsalStatusQuery,
  type RehearsalReport,
  type RehearsalStatus,
} from '../workflows/rehearsal-definitions';
import { formatReport, formatRehearsalStatus } from './rehearsal-report';
import { asReplicationSample, replicationEstimate, replicationLines } from './replication-view';

export interface StatusView {
  workflowId: string;
  /** migrationWorkflow, or rehearsalWorkflow for `pgshift rehearse`. */
  workflowType?: string;
  /** Temporal's view: RUNNING, COMPLETED, FAILED, CANCELLED, TERMINATED, TIMED_OUT... */
  execution: string;
  status?: MigrationStatus;
  /** Set instead of `status` when the id is a rehearsal's (`pgshift rehearse`). */
  rehearsal?: RehearsalStatus;
  /** A completed rehearsal's report, when no worker answered the query. */
  report?: RehearsalReport;
  /**
   * The running activity's last heartbeat details (bytes dumped, position in the dump, tables verified),
   * as the server has them: the worker sends them every few seconds (maxHeartbeatThrottleInterval).
   */
  progress?: { activity: string; details?: unknown; attempt: number; lastFailure?: string };
  failure?: string;
  note?: string;
}

const QUERY_DEADLINE_MS = 5000;

export async function fetchStatus(client: Client, workflowId: string): Promise<StatusView> {
  const handle = client.workflow.getHandle(workflowId);
  const description = await handle.describe().catch((err: unknown) => {
    if (err instanceof WorkflowNotFoundError)
      throw new NotFoundError(`no migration ${workflowId} on this Temporal server`);
    throw err;
  });
  const view: StatusView = { workflowId, workflowType: description.type, execution: description.status.name };
  // A step may have a helper beside it (a ping of its worker): the one that reports progress is the step.
  const activities = description.raw.pendingActivities ?? [];
  const pending = activities.find((a) => a.heartbeatDetails?.payloads?.length) ?? activities[0];
  if (pending) {
    const payload = pending.heartbeatDetails?.payloads?.[0];
    view.progress = {
      activity: pending.activityType?.name ?? '?',
      details: payload ? defaultPayloadConverter.fromPayload(payload) : undefined,
      attempt: pending.attempt ?? 1,
      lastFailure: pending.lastFailure?.message ?? undefined,
    };
  }
  const rehearsal = description.type === REHEARSAL_WORKFLOW_TYPE;
  try {
    // Queries are answered by a worker; without one the server waits long. Do not make the operator wait.
    const deadline = Date.now() + QUERY_DEADLINE_MS;
    if (rehearsal) {
      view.rehearsal = await client.connection.withDeadline(deadline, () =>
        handle.query(rehearsalStatusQuery),
      );
    } else {
      view.status = await client.connection.withDeadline(deadline, () => handle.query(statusQuery));
    }
  } catch {
    // No worker answered: a closed workflow falls back to its result or failure below.
    if (description.status.name === 'RUNNING') {
      view.note = `no worker answered within ${QUERY_DEADLINE_MS / 1000}s: is \`pgshift worker\` running for task queue ${description.taskQueue}?`;
    }
  }
  if (description.status.name === 'COMPLETED' && rehearsal && !view.rehearsal) {
    view.report = (await handle.result()) as RehearsalReport;
  } else if (description.status.name === 'COMPLETED' && !rehearsal && !view.status) {
    view.status = (await handle.result()) as MigrationStatus;
  }
  if (description.status.name === 'FAILED') {
    view.failure = await handle.result().then(
      () => undefined,
      (err: Error) => failureMessage(err),
    );
  }
  return view;
}

function failureMessage(err: Error): string {
  let msg = err.message;
  let cause = (err as { cause?: Error }).cause;
  while (cause) {
    msg = cause.message || msg;
    cause = (cause as { cause?: Error }).cause;
  }
  return msg;
}

/** What each phase means to the operator; a phase added later shows under its own name. */
const PHASE_TITLES: Record<string, string> = {
  running: 'Running',
  'awaiting-window': 'Waiting for the downtime window',
  'awaiting-cutover': 'Waiting for your cutover confirmation',
  compensating: 'Rolling back',
  'rolled-back': 'Rolled back',
  completed: 'Completed',
  'completed-with-errors': 'Completed with errors',
  'awaiting-source-deprovision': 'Waiting for your decision on deprovisioning the source',
};

/** e.g. "Waiting for your cutover confirmation — step 8/12: Wait for cutover confirmation". */
export function statusHeadline(s: MigrationStatus): string {
  const phase = PHASE_TITLES[s.phase] ?? s.phase;
  const index = s.steps.findIndex((step) => step.name === s.currentStep);
  if (index < 0) return phase;
  return `${phase} — step ${index + 1}/${s.steps.length}: ${s.steps[index].title}`;
}

const MARK: Record<string, string> = {
  pending: '  ',
  running: '▶ ',
  done: '✔ ',
  skipped: '- ',
  failed: '✘ ',
  cancelled: '⊘ ',
};

function stepLine(s: StepStatus, now: number): string {
  const took = s.startedAt ? formatDuration((s.endedAt ?? now) - s.startedAt) : '';
  const detail = s.detail ? `  ${s.detail}` : '';
  const error = s.error ? `\n      ${s.error.split('\n').join('\n      ')}` : '';
  return `  ${MARK[s.state] ?? '  '}${s.title.padEnd(40)} ${s.state.padEnd(9)} ${took.padStart(8)}${detail}${error}`;
}

export function formatStatus(view: StatusView, now = Date.now()): string {
  const out: string[] = [];
  if (view.rehearsal) out.push(formatRehearsalStatus(view.workflowId, view.execution, view.rehearsal, now));
  else if (view.report) out.push(`${formatReport(view.report)}\n  (execution: ${view.execution})`);
  else {
    const kind = view.workflowType === REHEARSAL_WORKFLOW_TYPE ? 'Rehearsal' : 'Migration';
    out.push(`${kind} ${view.workflowId}: ${view.execution}`);
  }
  const s = view.status;
  if (s) {
    out.push(`  ${s.source} → ${s.target} on ${s.platform}`, `  ${statusHeadline(s)}`);
    out.push('', ...s.steps.map((step) => stepLine(step, now)));
    if (s.compensation.some((c) => c.state !== 'pending')) {
      out.push(
        '',
        '  Rollback:',
        ...s.compensation.filter((c) => c.state !== 'pending').map((c) => stepLine(c, now)),
      );
    }
    if (s.downtime.startedAt) {
      out.push(
        '',
        `  Downtime: ${formatDuration((s.downtime.endedAt ?? now) - s.downtime.startedAt)}${s.downtime.endedAt ? '' : ' so far'}`,
      );
    }
    if (s.dumpBytes !== undefined) out.push(`  Dump: ${formatBytes(s.dumpBytes)} (${s.dumpBytes} bytes)`);
    const replication = replicationLines(s, now);
    // Under the downtime line when there is one, else after a blank line of its own.
    if (replication.length) out.push(...(s.downtime.startedAt ? [] : ['']), ...replication);
    if (s.verification) {
      const v = s.verification;
      out.push(
        `  Verification: ${v.ok ? 'source and target agree' : 'MISMATCH'} — ${v.databases.length} databases, ${v.tablesCompared} tables, ${v.rowsVerified} rows, ${v.sequencesCompared} sequences`,
        ...v.mismatches.slice(0, 20).map((m) => `    ${m}`),
      );
    }
    if (s.cutover.waiting) {
      const left = s.cutover.deadline
        ? ` (${formatDuration(Math.max(0, s.cutover.deadline - now))} left)`
        : '';
      out.push('', `  Waiting for cutover confirmation${left}: pgshift cutover ${view.workflowId}`);
      if (s.method === 'logical')
        out.push('  (replicating: the services run on the source until the cutover)');
    }
    if (s.abortReason) out.push(`  Aborted: ${s.abortReason}`);
    for (const w of s.warnings) out.push(`  warning: ${w}`);
    for (const e of s.errors) out.push(`  error: ${e}`);
  }
  // The workflow's own quick samples of the replication are no step's progress: shown above from the status.
  if (view.progress && view.progress.activity !== 'sampleReplication') {
    const steps = view.status?.steps ?? view.rehearsal?.steps ?? [];
    const running = steps.find((step) => step.state === 'running');
    const sample = asReplicationSample(view.progress.details);
    const estimate = sample
      ? replicationEstimate(sample, running, now)
      : estimateProgress(view.progress.details);
    const what = estimate ? formatProgressLine(estimate) : undefined;
    const title = running?.title ?? view.progress.activity;
    out.push(
      `  ${title} (attempt ${view.progress.attempt})${what ? `: ${what}` : ''}` +
        (view.progress.lastFailure ? `\n    last failure: ${view.progress.lastFailure}` : ''),
    );
  }
  if (view.failure) out.push('', `  Failed: ${view.failure}`);
  if (view.note) out.push(`  ${view.note}`);
  return out.join('\n');
}
