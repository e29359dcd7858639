import type { MigrationInput } from './contract';
import type { ActivityScope } from './scope';
import { unexpectedRestoreErrors } from './expected-errors';
import type { PgTarget } from '../pg/connection';
import { carryDatabaseProperties } from '../pg/database-properties';
import { classifyRestoreErrors } from '../pg/restore-errors';
import { endStraySessions } from '../pg/parallel/sessions';
import { isPristine, resetTarget } from '../pg/reset';

/**
 * Before any strategy's restore: the target as the platform created it, so the restore does exactly what a
 * first attempt would. Sessions an earlier attempt left are ended; the target is reset unless the workflow
 * says it is fresh (created by this run, never restored into) and it looks it.
 */
export async function prepareTarget(
  scope: ActivityScope,
  target: PgTarget,
  adminRole: string,
  freshTarget: boolean,
): Promise<void> {
  scope.progress({ phase: 'resetting target' });
  await endStraySessions(target);
  if (freshTarget && (await isPristine(target, { adminRole }))) return;
  await resetTarget(target, { adminRole });
}

/**
 * After either strategy's restore: what a dump leaves out of `postgres` and `template1` (comment, settings,
 * privileges...) is copied from the source, its errors judged like the restore's. Returns every expected
 * error, the restore's first.
 */
export async function carryProperties(
  scope: ActivityScope,
  input: MigrationInput,
  target: PgTarget,
  expected: readonly string[],
  restoreExpected: string[],
): Promise<string[]> {
  const { source } = input.plan;
  scope.progress({ phase: 'carrying the properties of postgres and template1' });
  const sourceConn = await scope.connect(source.handle, source.environment);
  const carried = classifyRestoreErrors(await carryDatabaseProperties(sourceConn, target), expected);
  const expectedErrors = [...restoreExpected, ...carried.expected];
  if (carried.unexpected.length > 0) {
    throw unexpectedRestoreErrors(
      'the restore ran, but the properties of databases postgres and template1 could not all be carried',
      carried.unexpected,
      expectedErrors,
    );
  }
  return expectedErrors;
}
