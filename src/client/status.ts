import type { Client } from '@temporalio/client';
import { defaultPayloadConverter } from '@temporalio/common';
import { formatDuration } from '../lib/duration';
import type { MigrationStatus, StepStatus } from '../workflows/definitions';
import { statusQuery } from '../workflows/definitions';

export interface StatusView {
  workflowId: string;
  /** Temporal's view: RUNNING, COMPLETED, FAILED, CANCELLED, TERMINATED, TIMED_OUT... */
  execution: string;
  status?: MigrationStatus;
  /** Heartbeat details of the running step (e.g. bytes dumped so far). */
  progress?: { activity: string; details?: unknown; attempt: number; lastFailure?: string };
  failure?: string;
}

export async function fetchStatus(client: Client, workflowId: string): Promise<StatusView> {
  const handle = client.workflow.getHandle(workflowId);
  const description = await handle.describe();
  const view: StatusView = { workflowId, execution: description.status.name };
  const pending = description.raw.pendingActivities?.[0];
  if (pending) {
    const payload = pending.heartbeatDetails?.payloads?.[0];
    view.progress = {
      activity: pending.activityType?.name ?? '?',
      details: payload ? defaultPayloadConverter.fromPayload(payload) : undefined,
      attempt: pending.attempt ?? 1,
      lastFailure: pending.lastFailure?.message ?? undefined,
    };
  }
  try {
    view.status = await handle.query(statusQuery);
  } catch {
    // A closed workflow with no worker to answer queries: fall back to its result or failure.
  }
  if (description.status.name === 'COMPLETED' && !view.status) {
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
  const out: string[] = [`Migration ${view.workflowId}: ${view.execution}`];
  const s = view.status;
  if (s) {
    out.push(`  ${s.source} → ${s.target} on ${s.platform}; phase ${s.phase}${s.currentStep ? `, step ${s.currentStep}` : ''}`);
    out.push('', ...s.steps.map((step) => stepLine(step, now)));
    if (s.compensation.some((c) => c.state !== 'pending')) {
      out.push('', '  Rollback:', ...s.compensation.filter((c) => c.state !== 'pending').map((c) => stepLine(c, now)));
    }
    if (s.downtime.startedAt) {
      out.push('', `  Downtime: ${formatDuration((s.downtime.endedAt ?? now) - s.downtime.startedAt)}${s.downtime.endedAt ? '' : ' so far'}`);
    }
    if (s.dumpBytes !== undefined) out.push(`  Dump: ${s.dumpBytes} bytes`);
    if (s.verification) {
      const v = s.verification;
      out.push(
        `  Verification: ${v.ok ? 'source and target agree' : 'MISMATCH'} — ${v.databases.length} databases, ${v.tablesCompared} tables, ${v.rowsVerified} rows, ${v.sequencesCompared} sequences`,
        ...v.mismatches.slice(0, 20).map((m) => `    ${m}`),
      );
    }
    if (s.cutover.waiting) {
      const left = s.cutover.deadline ? ` (${formatDuration(Math.max(0, s.cutover.deadline - now))} left)` : '';
      out.push('', `  Waiting for cutover confirmation${left}: pgshift cutover ${view.workflowId}`);
    }
    if (s.abortReason) out.push(`  Aborted: ${s.abortReason}`);
    for (const w of s.warnings) out.push(`  warning: ${w}`);
    for (const e of s.errors) out.push(`  error: ${e}`);
  }
  if (view.progress) {
    const d = view.progress.details as { bytes?: number; phase?: string } | undefined;
    const what = [d?.phase, d?.bytes !== undefined ? `${d.bytes} bytes` : undefined].filter(Boolean).join(', ');
    out.push(
      `  Running ${view.progress.activity} (attempt ${view.progress.attempt})${what ? `: ${what}` : ''}` +
        (view.progress.lastFailure ? `\n    last failure: ${view.progress.lastFailure}` : ''),
    );
  }
  if (view.failure) out.push('', `  Failed: ${view.failure}`);
  return out.join('\n');
}
