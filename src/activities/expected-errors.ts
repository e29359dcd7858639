import type { Plan } from '../plan/schema';
import type { Platform } from '../platform/platform';

const SHOWN = 20;

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
