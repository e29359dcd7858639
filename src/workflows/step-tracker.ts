// The step bookkeeping the migration and the rehearsal share: each step's status (timed in workflow time),
// the PgshiftStep search attribute and the current details that show where the workflow is, the log lines,
// and the entries of the steps that undo what was done (the migration's saga, the rehearsal's cleanup).
// Runs in the workflow sandbox: deterministic, no Node built-ins.
import { isCancellation, log, setCurrentDetails, upsertSearchAttributes } from '@temporalio/workflow';
import { PHASE_ATTRIBUTE, STEP_ATTRIBUTE, type StepState, type StepStatus } from './definitions';
import { describeFailure } from './failures';

/** The part of a workflow's status the tracker writes. */
export interface TrackedStatus {
  currentStep?: string;
  /** Every step, pending at first, in the order the workflow lists them. */
  steps: StepStatus[];
  errors: string[];
}

export interface StepTrackerOptions<Name extends string> {
  status: TrackedStatus;
  /** Upsert PgshiftStep and PgshiftPhase (false when the server has not registered them). */
  useSearchAttributes: boolean;
  /** What a step is called in the current details and in the log: "step", "rehearsal step". */
  noun: string;
  /** Also log "<noun> <name> started" when a step is entered, not only how it ended. */
  logStarts: boolean;
  /** Called when a step run by runStep fails, after its status says so (not when it is cancelled). */
  onFailed?: (name: Name, message: string) => void;
}

/** The words of one workflow's undo steps. */
export interface UndoTexts {
  /** The PgshiftStep value while undoing: "compensating", "cleaning-up". */
  label: string;
  /** Before the step's title in the current details: "Rolling back", "Cleaning up". */
  doing: string;
  /** Before the step's title in the error recorded when it fails: "Rollback step", "Cleanup step". */
  noun: string;
}

export function stepTracker<Name extends string>(options: StepTrackerOptions<Name>) {
  const { status, useSearchAttributes, noun, logStarts, onFailed } = options;
  let lastStepAttribute: string | undefined;
  let lastPhaseAttribute: string | undefined;

  const step = (name: Name): StepStatus => status.steps.find((s) => s.name === name)!;

  /** Sets PgshiftStep (only when it changes) and the current details. */
  function publish(label: string, details: string): void {
    if (useSearchAttributes && label !== lastStepAttribute) {
      upsertSearchAttributes([{ key: STEP_ATTRIBUTE, value: label }]);
      lastStepAttribute = label;
    }
    setCurrentDetails(details);
  }

  /** Sets PgshiftPhase, only when it changes: the UI's list can show and filter by it. */
  function publishPhase(phase: string): void {
    if (useSearchAttributes && phase !== lastPhaseAttribute) {
      upsertSearchAttributes([{ key: PHASE_ATTRIBUTE, value: phase }]);
      lastPhaseAttribute = phase;
    }
  }

  /** Marks the step running (a step entered again keeps its start) and publishes it. */
  function enter(name: Name): StepStatus {
    const s = step(name);
    if (s.state !== 'running') {
      s.state = 'running';
      s.startedAt = Date.now();
      delete s.endedAt;
      delete s.error;
      delete s.detail;
    }
    status.currentStep = name;
    const index = status.steps.findIndex((x) => x.name === name) + 1;
    publish(name, `**${s.title}** (${noun} ${index} of ${status.steps.length})`);
    if (logStarts) log.info(`${noun} ${name} started`);
    return s;
  }

  function finish(name: Name, state: StepState, detail?: string, error?: string): void {
    const s = step(name);
    s.state = state;
    s.endedAt = Date.now();
    if (detail !== undefined) s.detail = detail;
    if (error !== undefined) s.error = error;
    log.info(`${noun} ${name} ${state}`);
  }

  /** Runs one step, timed from before the body to after it; a failure or cancellation is rethrown. */
  async function runStep<T>(
    name: Name,
    body: () => Promise<T>,
    describe?: (r: T) => string | undefined,
  ): Promise<T> {
    enter(name);
    try {
      const result = await body();
      finish(name, 'done', describe?.(result));
      return result;
    } catch (err) {
      const message = describeFailure(err);
      if (isCancellation(err)) {
        finish(name, 'cancelled', undefined, message);
      } else {
        finish(name, 'failed', undefined, message);
        onFailed?.(name, message);
      }
      throw err;
    }
  }

  /**
   * The `undo(name, body, tolerated?)` of a saga or a cleanup: each call appends its entry to `entries`
   * and runs the body. A failure does not stop the others: it is recorded in status.errors, for the
   * operator to do by hand. `tolerated` turns a failure the workflow can live with into a skipped entry.
   * Resolves to whether the body succeeded.
   */
  function undoSteps<UndoName extends string>(
    entries: StepStatus[],
    titles: Record<UndoName, string>,
    texts: UndoTexts,
  ) {
    return async function undo(
      name: UndoName,
      body: () => Promise<unknown>,
      tolerated?: (err: unknown) => string | undefined,
    ): Promise<boolean> {
      const entry: StepStatus = { name, title: titles[name], state: 'running', startedAt: Date.now() };
      entries.push(entry);
      status.currentStep = name;
      publish(texts.label, `${texts.doing}: **${entry.title}**`);
      try {
        await body();
        entry.state = 'done';
        return true;
      } catch (err) {
        const skipped = tolerated?.(err);
        if (skipped !== undefined) {
          entry.state = 'skipped';
          entry.detail = skipped;
          return false;
        }
        entry.state = 'failed';
        entry.error = describeFailure(err);
        status.errors.push(`${texts.noun} "${entry.title}" failed: ${entry.error}. Do it by hand.`);
        return false;
      } finally {
        entry.endedAt = Date.now();
      }
    };
  }

  return { step, publish, publishPhase, enter, finish, runStep, undoSteps };
}
