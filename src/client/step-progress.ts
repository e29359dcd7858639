// What `start --wait` and `status --watch` print when stdout is not a terminal (a CI log, a pipe, a file):
// one plain line per step as it starts and as it ends, instead of silence until the end. A terminal gets
// the redrawn table instead (see cli.ts).
import { formatDuration } from '../lib/duration';
import type { StepStatus } from '../workflows/definitions';
import type { StatusView } from './status';

type Reported = 'started' | 'ended';

/** Remembers what it has already printed, so each poll of the status adds only what changed. */
export class StepProgress {
  private readonly reported = new Map<string, Reported>();
  private lastNote?: string;
  private waitingShown = false;

  /** The lines that `view` adds to what earlier views already printed. */
  next(view: StatusView): string[] {
    const lines: string[] = [];
    const migration = view.status;
    const rehearsal = view.rehearsal;
    const groups: Array<[string, StepStatus[]]> = [
      ['', migration?.steps ?? rehearsal?.steps ?? []],
      ['rollback: ', migration?.compensation ?? []],
      ['cleanup: ', rehearsal?.cleanup ?? []],
    ];
    for (const [prefix, steps] of groups) {
      for (const step of steps) lines.push(...this.stepLines(prefix, step));
    }
    if (migration?.cutover.waiting && !this.waitingShown) {
      this.waitingShown = true;
      lines.push(`Waiting for cutover confirmation: pgshift cutover ${view.workflowId}`);
    }
    if (view.note && view.note !== this.lastNote) lines.push(view.note);
    this.lastNote = view.note;
    return lines;
  }

  private stepLines(prefix: string, step: StepStatus): string[] {
    const key = `${prefix}${step.name}`;
    const already = this.reported.get(key);
    const lines: string[] = [];
    const title = `${prefix}${step.title}`;
    if (step.state === 'pending' || already === 'ended') return lines;
    if (step.state === 'skipped') {
      this.reported.set(key, 'ended');
      return [`${title}: skipped${step.detail ? ` — ${step.detail}` : ''}`];
    }
    if (!already) {
      this.reported.set(key, 'started');
      lines.push(`${title}: started`);
    }
    if (step.state === 'running') return lines;
    this.reported.set(key, 'ended');
    const took =
      step.startedAt !== undefined && step.endedAt !== undefined
        ? ` in ${formatDuration(step.endedAt - step.startedAt)}`
        : '';
    const detail = step.detail ? ` (${step.detail})` : '';
    const error = step.error ? `: ${step.error.split('\n')[0]}` : '';
    lines.push(`${title}: ${step.state}${took}${detail}${error}`);
    return lines;
  }
}
