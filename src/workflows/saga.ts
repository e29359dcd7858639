// A saga's undo stack: each step registers its undo when it starts (a step that failed half-way or was
// cancelled may still have left something behind), and a rollback runs them newest first. The shape of the
// saga sample in temporalio/samples-typescript. Runs in the workflow sandbox.
import { log } from '@temporalio/workflow';
import { describeFailure } from './failures';

export class Saga {
  private readonly undos: { label: string; run: () => Promise<void> }[] = [];

  /** Registers the undo of the step about to start. `run` records its own outcome (see undoSteps). */
  add(label: string, run: () => Promise<void>): void {
    this.undos.push({ label, run });
  }

  /**
   * Runs every undo, newest first, each once. One that throws does not stop the others: each leaves less
   * for the operator to clean by hand; what it threw goes to `onError`.
   */
  async compensate(onError: (label: string, message: string) => void): Promise<void> {
    for (let undo = this.undos.pop(); undo; undo = this.undos.pop()) {
      try {
        await undo.run();
      } catch (err) {
        const message = describeFailure(err);
        log.error(`undo ${undo.label} failed: ${message}`);
        onError(undo.label, message);
      }
    }
  }
}
