// The running step's progress as a live bar on a terminal (cli-progress), with the step lines printed
// above it. Only for a TTY: without one, the plain lines of src/client/step-progress.ts are printed.
import { MultiBar, Presets, type SingleBar } from 'cli-progress';
import { formatDuration } from './duration';
import type { ProgressEstimate } from './progress-estimate';

const STEPS = 1000;

export interface ProgressOutput {
  /** A line above the bar (or a plain line when no bar is shown). */
  log(line: string): void;
  /** Shows, moves or (without an estimate) removes the bar of the step titled `title`. */
  update(title: string | undefined, estimate: ProgressEstimate | undefined): void;
  stop(): void;
}

function payloadOf(title: string, e: ProgressEstimate) {
  return {
    title,
    pct: e.fraction !== undefined ? `${Math.floor(e.fraction * 100)}%` : '…',
    info: [e.label, e.amount, e.rate].filter(Boolean).join(', '),
    etaText: e.etaMs !== undefined ? `ETA ${formatDuration(e.etaMs)}` : 'ETA …',
  };
}

export class TerminalProgress implements ProgressOutput {
  private multi?: MultiBar;
  private bar?: SingleBar;

  constructor(private readonly stream: NodeJS.WriteStream = process.stdout) {}

  log(line: string): void {
    if (this.multi) this.multi.log(`${line}\n`);
    else this.stream.write(`${line}\n`);
  }

  update(title: string | undefined, estimate: ProgressEstimate | undefined): void {
    if (!title || !estimate) {
      this.stop();
      return;
    }
    const value = Math.round((estimate.fraction ?? 0) * STEPS);
    const payload = payloadOf(title, estimate);
    if (this.multi && this.bar) {
      this.bar.update(value, payload);
      return;
    }
    this.multi = new MultiBar(
      {
        format: '  {bar} {pct} {title}: {info} — {etaText}',
        barsize: 24,
        hideCursor: true,
        clearOnComplete: true,
        stream: this.stream,
      },
      Presets.shades_classic,
    );
    this.bar = this.multi.create(STEPS, value, payload);
  }

  stop(): void {
    // Lines logged since the last redraw are still in the bar's buffer.
    this.multi?.update();
    this.multi?.stop();
    this.multi = undefined;
    this.bar = undefined;
  }
}
