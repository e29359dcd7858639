import { ApplicationFailure } from '@temporalio/activity';
import type { Plan } from '../plan/schema';
import type { Platform } from '../platform/platform';
import type { UnexpectedRestoreErrorsDetails } from './contract';

const SHOWN = 20;
/** Error lines carried as failure details: enough for any report, small enough for the history. */
const CARRIED = 200;

export function expectedErrorsFor(platform: Platform, plan: Plan): string[] {
  return plan.restore.expectedErrors ?? [...platform.expectedRestoreErrors];
}

/** The operator needs the exact lines to fix the source; the list is capped so history stays small. */
export function unexpectedErrorsMessage(headline: string, errors: string[]): string {
  const shown = errors.slice(0, SHOWN).join('\n');
  const more = errors.length > SHOWN ? `\n... and ${errors.length - SHOWN} more` : '';
  return (
    `${headline}: ${errors.length} unexpected error(s):\n${shown}${more}\n` +
    'Fix these on the source (or list them in restore.expectedErrors if they are harmless), then start the migration again.'
  );
}

/**
 * The failure of a restore (or schema test) with errors the plan does not allow: non-retryable (a retry
 * restores the same dump into the same version), with the lines as structured details, so a workflow can
 * report them rather than parse the message. Details: [unexpected, expected] (UnexpectedRestoreErrorsDetails).
 */
export function unexpectedRestoreErrors(
  headline: string,
  unexpected: string[],
  expected: string[],
): ApplicationFailure {
  const details: UnexpectedRestoreErrorsDetails = [capped(unexpected), capped(expected)];
  return ApplicationFailure.create({
    type: 'UnexpectedRestoreErrors',
    nonRetryable: true,
    message: unexpectedErrorsMessage(headline, unexpected),
    details,
  });
}

function capped(lines: string[]): string[] {
  return lines.length > CARRIED
    ? [...lines.slice(0, CARRIED), `... and ${lines.length - CARRIED} more`]
    : lines;
}
