import type { MigrationInput } from './contract';
import type { ActivityScope } from './scope';
import { expectedErrorsFor, unexpectedRestoreErrors } from './expected-errors';
import type { Platform } from '../platform/platform';
import type { PgTarget } from '../pg/connection';
import { carryDatabaseProperties } from '../pg/database-properties';
import { type ClassifiedErrors, classifyRestoreErrors } from '../pg/restore-errors';
import { flushWal } from '../pg/parallel/session-settings';
import { endStraySessions } from '../pg/parallel/sessions';
import { isPristine, resetTarget } from '../pg/reset';

/**
 * What every strategy's restore does around its own copy: the target made ready (prepareTarget), `copy`
 * run into it, only the plan's expected errors let through, the WAL flushed when the copy's sessions
 * committed asynchronously (BULK_LOAD_SETTINGS), and what the dumps leave out of `postgres` and `template1`
 * carried from the source. Returns the copy's result and every expected error.
 */
export async function restoreAround<R extends ClassifiedErrors>(
  scope: ActivityScope,
  input: MigrationInput,
  platform: Platform,
  opts: { freshTarget: boolean; asyncCommit: boolean },
  copy: (target: PgTarget, expected: readonly string[]) => Promise<R>,
): Promise<{ result: R; expectedErrors: string[] }> {
  const { target } = input.plan;
  const conn = await scope.connect(target.handle, target.environment);
  const expected = expectedErrorsFor(platform, input.plan);
  await prepareTarget(scope, conn, platform.adminRole, opts.freshTarget);
  const result = await copy(conn, expected);
  if (result.unexpected.length > 0) {
    throw unexpectedRestoreErrors('the restore failed', result.unexpected, result.expected);
  }
  if (opts.asyncCommit) await flushWal(conn);
  const expectedErrors = await carryProperties(scope, input, conn, expected, result.expected);
  return { result, expectedErrors };
}

/**
 * Before any strategy's restore: the target as the platform created it, so the restore does exactly what a
 * first attempt would. Sessions an earlier attempt left are ended; the target is reset unless the workflow
 * says it is fresh (created by this run, never restored into) and it looks it.
 */
async function prepareTarget(
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
 * After every strategy's restore: what a dump leaves out of `postgres` and `template1` (comment, settings,
 * privileges...) is copied from the source, its errors judged like the restore's. Returns every expected
 * error, the restore's first.
 */
async function carryProperties(
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
