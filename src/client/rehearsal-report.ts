// A rehearsal as an operator reads it: its phases with their durations, the downtime estimate and what
// each part rests on, the restore errors, the verification and the cleanup.
import { formatDuration } from '../lib/duration';
import type { StepStatus } from '../workflows/definitions';
import type { RehearsalReport, RehearsalStatus } from '../workflows/rehearsal-definitions';

const MARK: Record<string, string> = {
  pending: '  ',
  running: '▶ ',
  done: '✔ ',
  skipped: '- ',
  failed: '✘ ',
  cancelled: '⊘ ',
};

/** Error lines are multi-line messages; the first 20 are shown, the JSON output has them all. */
const SHOWN_ERRORS = 20;

export function formatBytes(bytes: number): string {
  const units = ['bytes', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return unit === 0 ? `${bytes} bytes` : `${value.toFixed(1)} ${units[unit]}`;
}

function line(s: StepStatus, now: number): string {
  const took = s.startedAt ? formatDuration((s.endedAt ?? now) - s.startedAt) : '';
  const detail = s.detail ? `  ${s.detail}` : '';
  const error = s.error ? `\n      ${s.error.split('\n').join('\n      ')}` : '';
  return `  ${MARK[s.state] ?? '  '}${s.title.padEnd(44)} ${s.state.padEnd(9)} ${took.padStart(8)}${detail}${error}`;
}

function indent(text: string, by: string): string {
  return by + text.split('\n').join(`\n${by}`);
}

export function formatReport(r: RehearsalReport): string {
  const out: string[] = [
    `Rehearsal ${r.rehearsalId}: ${r.ok ? 'OK' : 'PROBLEMS FOUND'}`,
    `  ${r.source} → PostgreSQL ${r.targetVersion} on ${r.platform}, rehearsed on ${r.copy} → ${r.target}`,
    `  from backup ${r.backup.id}, taken ${r.backup.createdAt}`,
    '',
    '  Phases',
    ...r.phases.map(
      (p) =>
        `  ${MARK[p.state] ?? '  '}${p.title.padEnd(44)} ${p.state.padEnd(9)} ${(p.ms !== undefined ? formatDuration(p.ms) : '').padStart(8)}`,
    ),
    '',
    `  Dump: ${formatBytes(r.dumps.bytes)}; warm-up ${formatDuration(r.dumps.warmUpMs)}, timed ${formatDuration(r.dumps.timedMs)}`,
    '',
    `  Estimated downtime: ${formatDuration(r.estimate.totalMs)}`,
    ...r.estimate.parts.map(
      (p) =>
        `    ${p.title.padEnd(32)} ${formatDuration(p.ms).padStart(8)}  ${p.basis.padEnd(9)}  ${p.detail}`,
    ),
    ...r.estimate.excludes.map((e) => `    not included: ${e}`),
    '',
    `  Restore: ${r.restore.unexpectedErrors.length} unexpected error(s), ${r.restore.expectedErrors.length} expected`,
  ];
  for (const e of r.restore.unexpectedErrors.slice(0, SHOWN_ERRORS)) out.push(indent(e, '    '));
  if (r.restore.unexpectedErrors.length > SHOWN_ERRORS) {
    out.push(`    ... and ${r.restore.unexpectedErrors.length - SHOWN_ERRORS} more (--json shows them all)`);
  }
  const v = r.verification;
  if (v) {
    out.push(
      `  Verification: ${v.ok ? 'the copy and the target agree' : 'MISMATCH'} — ${v.databases.length} databases, ` +
        `${v.tablesCompared} tables, ${v.rowsVerified} rows, ${v.sequencesCompared} sequences`,
      ...v.mismatches.slice(0, SHOWN_ERRORS).map((m) => `    ${m}`),
    );
  } else if (r.verificationSkipped) {
    out.push(`  Verification: skipped (${r.verificationSkipped})`);
  }
  out.push('', '  Cleanup', ...r.cleanup.map((c) => line(c, Date.now())));
  if (r.problems.length) out.push('', '  Problems', ...r.problems.map((p) => `    - ${p}`));
  for (const w of r.warnings) out.push(`  warning: ${w}`);
  return out.join('\n');
}

/** A rehearsal's live status (or its end), for `pgshift status`. */
export function formatRehearsalStatus(
  workflowId: string,
  execution: string,
  s: RehearsalStatus,
  now = Date.now(),
): string {
  if (s.report && s.phase === 'completed') return `${formatReport(s.report)}\n  (execution: ${execution})`;
  const out = [
    `Rehearsal ${workflowId}: ${execution}`,
    `  ${s.source} → PostgreSQL ${s.targetVersion} on ${s.platform}, rehearsed on ${s.copy} → ${s.target}; phase ${s.phase}`,
    '',
    ...s.steps.map((step) => line(step, now)),
  ];
  if (s.cleanup.length) out.push('', '  Cleanup', ...s.cleanup.map((c) => line(c, now)));
  for (const w of s.warnings) out.push(`  warning: ${w}`);
  for (const e of s.errors) out.push(`  error: ${e}`);
  return out.join('\n');
}
