import { ApplicationFailure } from '@temporalio/activity';
import type { Plan } from '../plan/schema';
import type { Platform } from '../platform/platform';
import type { UnexpectedRestoreErrorsDetails } from './contract';
import { isMalformedDumpError } from '../pg/restore-errors';

const SHOWN = 20;
/** Error lines carried as failure details: enough for any report, small enough for the history. */
const CARRIED = 200;

export function expectedErrorsFor(platform: Platform, plan: Plan): string[] {
  return plan.restore.expectedErrors ?? [...platform.expectedRestoreErrors];
}

/**
 * The operator needs the exact lines, and to know where the fault lies: errors that show the dump file
 * itself is malformed are not fixed on the source, and are listed apart from those that are. The list is
 * capped so history stays small.
 */
export function unexpectedErrorsMessage(headline: string, errors: string[]): string {
  const malformed = errors.filter(isMalformedDumpError);
  const fromSource = errors.filter((e) => !isMalformedDumpError(e));
  const parts = [`${headline}: ${errors.length} unexpected error(s):`];
  if (fromSource.length > 0) {
    parts.push(
      listed(fromSource),
      'Fix these on the source (or list them in restore.expectedErrors if they are harmless), then start the migration again.',
    );
  }
  if (malformed.length > 0) {
    const which = malformed.length === errors.length ? 'They' : `${malformed.length} of them`;
    parts.push(
      `${which} show that the dump file itself is malformed:`,
      listed(malformed),
      'That is a defect of pgshift or pg_dumpall, or a corrupted file, not a problem of the source: do not ' +
        "change the source for it. Report it to pgshift's maintainers with the lines shown, then start the " +
        'migration again (it takes a fresh dump).',
    );
  }
  return parts.join('\n');
}

function listed(errors: string[]): string {
  const more = errors.length > SHOWN ? `\n... and ${errors.length - SHOWN} more` : '';
  return errors.slice(0, SHOWN).join('\n') + more;
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
