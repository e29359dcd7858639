// What both workflows (migration and rehearsal) settle before their first step. Runs in the workflow sandbox.
import { ApplicationFailure, workflowInfo } from '@temporalio/workflow';
import type { MigrationInput } from '../activities/contract';
import { parseDuration } from '../lib/duration';
import { oneLine } from './failures';

const DEFAULT_WORKSPACE_START_TIMEOUT = '5m';

/** The input as the activities see it: labelled with this run (see MigrationInput.runId, startedAt). */
export function runInput(started: MigrationInput): MigrationInput {
  return {
    ...started,
    runId: started.runId ?? workflowInfo().firstExecutionRunId,
    startedAt: started.startedAt ?? workflowInfo().startTime.getTime(),
  };
}

/** The workspaceStartTimeout option, checked before any step (as an activity option it would fail every task). */
export function workspaceStartTimeoutOf(option: string | undefined): { text: string; ms: number } {
  const text = option ?? DEFAULT_WORKSPACE_START_TIMEOUT;
  const ms = parseDuration(text);
  if (ms === undefined) {
    throw ApplicationFailure.nonRetryable(
      `workspaceStartTimeout "${oneLine(text, 50)}" is not a duration such as "5m"`,
      'BadInputError',
    );
  }
  return { text, ms };
}
