// What `start --wait`, `status --watch` and the demo print while a migration runs: one line per step as it
// starts and as it ends, and the running step's progress — a live bar on a terminal (src/lib/progress-bar.ts),
// a plain line every half minute elsewhere (a CI log, a pipe, a file), instead of silence until the end.
import { formatDuration } from '../lib/duration';
import type { ProgressOutput } from '../lib/progress-bar';
import { estimateProgress, formatProgressLine, type ProgressEstimate } from '../lib/progress-estimate';
import type { StepStatus } from '../workflows/definitions';
import { asReplicationSample, replicationEstimate, statusReplicationEstimate } from './replication-view';
import type { StatusView } from './status';

/** How often a plain (non-terminal) watch prints the running step's progress. */
export const PLAIN_PROGRESS_INTERVAL_MS = 30_000;

/**
 * The running step's title and its progress estimate: from what its activity heartbeated, or, for the
 * replication of method logical, from the samples the workflow keeps in its status (initial sync, lag).
 */
export function runningProgress(
  view: StatusView,
  now = Date.now(),
): { title: string; estimate: ProgressEstimate } | undefined {
  if (view.execution !== 'RUNNING') return undefined;
  const steps = view.status?.steps ?? view.rehearsal?.steps ?? [];
  const running = steps.find((s) => s.state === 'running');
  const details = view.progress?.activity === 'sampleReplication' ? undefined : view.progress?.details;
  const sample = asReplicationSample(details);
  const estimate =
    (sample ? replicationEstimate(sample, running, now) : undefined) ??
    statusReplicationEstimate(view.status, now) ??
    estimateProgress(details);
  if (!estimate) return undefined;
  return { title: running?.title ?? view.progress?.activity ?? 'running', estimate };
}

type Reported = 'started' | 'ended';

/** Remembers what it has already printed, so each poll of the status adds only what changed. */
export class StepProgress {
  private readonly reported = new Map<string, Reported>();
  private lastNote?: string;
  private waitingShown = false;
  private lastProgressAt?: number;
  private leftBehindShown = false;

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
      const online = migration.method === 'logical' ? ' (replicating; the services run on the source)' : '';
      lines.push(`Waiting for cutover confirmation${online}: pgshift cutover ${view.workflowId}`);
    }
    const leftBehind = migration?.replication?.cleanup?.leftBehind ?? [];
    if (leftBehind.length && !this.leftBehindShown) {
      // A slot left on the source keeps its WAL: said once, loudly, with the SQL to run.
      this.leftBehindShown = true;
      lines.push(
        'Replication objects LEFT BEHIND — run by hand (a slot left on the source keeps its WAL and fills its disk):',
        ...leftBehind.map((sql) => `  ${sql}`),
      );
    }
    if (view.note && view.note !== this.lastNote) lines.push(view.note);
    this.lastNote = view.note;
    return lines;
  }

  /** A plain progress line for the running step, at most every `intervalMs` (the first one at once). */
  progressLine(view: StatusView, now: number, intervalMs = PLAIN_PROGRESS_INTERVAL_MS): string | undefined {
    const running = runningProgress(view, now);
    if (!running) return undefined;
    if (this.lastProgressAt !== undefined && now - this.lastProgressAt < intervalMs) return undefined;
    this.lastProgressAt = now;
    return `${running.title}: ${formatProgressLine(running.estimate)}`;
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

/** A watch's output: the step lines, and the progress as a bar (terminal) or a periodic line (plain). */
export class WatchDisplay {
  private readonly steps = new StepProgress();

  /** `bar` on a terminal; without it, plain lines through `log`. Every line starts with `prefix`. */
  constructor(
    private readonly log: (line: string) => void,
    private readonly bar?: ProgressOutput,
    private readonly prefix = '',
  ) {}

  show(view: StatusView, now = Date.now()): void {
    const lines = this.steps.next(view).map((line) => `${this.prefix}${line}`);
    if (!this.bar) {
      const progress = this.steps.progressLine(view, now);
      if (progress) lines.push(`${this.prefix}${progress}`);
      for (const line of lines) this.log(line);
      return;
    }
    const running = runningProgress(view, now);
    // A finished step's lines go below its last bar, which is cleared first.
    if (!running) this.bar.update(undefined, undefined);
    for (const line of lines) this.bar.log(line);
    if (running) this.bar.update(running.title, running.estimate);
  }

  stop(): void {
    this.bar?.stop();
  }
}

/** The display for this process's stdout: a live bar when it is a terminal. */
export async function watchDisplay(prefix = ''): Promise<WatchDisplay> {
  const log = (line: string) => console.log(line);
  if (!process.stdout.isTTY) return new WatchDisplay(log, undefined, prefix);
  const { TerminalProgress } = await import('../lib/progress-bar');
  return new WatchDisplay(log, new TerminalProgress(), prefix);
}
