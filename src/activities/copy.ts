import { mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { DumpResult, MigrationInput, RestoreResult } from './contract';
import { type ActivityDeps, dumpPathOf, platformOf } from './deps';
import { cancellationSignal, withScope } from './scope';
import { expectedErrorsFor, unexpectedRestoreErrors } from './expected-errors';
import { dumpAll } from '../pg/dump';
import { resetTarget } from '../pg/reset';
import { restoreDump } from '../pg/restore';

/** The guide's `pg_dumpall | grep -v 'ALTER ROLE aptible .*PASSWORD' > dump.sql`, heartbeating bytes written. */
export async function dumpSource(deps: ActivityDeps, input: MigrationInput): Promise<DumpResult> {
  const { source } = input.plan;
  const platform = platformOf(deps, input);
  return withScope(platform, async (scope) => {
    const started = Date.now();
    const path = dumpPathOf(deps, input);
    await mkdir(dirname(path), { recursive: true, mode: 0o700 });
    const conn = await scope.connect(source.handle, source.environment);
    const result = await dumpAll(conn, path, {
      adminRole: platform.adminRole,
      signal: cancellationSignal(),
      onProgress: (bytes) => scope.progress({ bytes }),
    });
    return { path, ...result, durationMs: Date.now() - started };
  });
}

/**
 * The guide's `psql $TARGET_URL -f dump.sql`. The target is reset first, so a retry after a partial
 * restore yields exactly what a first attempt would; only the plan's expected errors are allowed.
 */
export async function restoreTarget(
  deps: ActivityDeps,
  input: MigrationInput,
  dump: DumpResult,
): Promise<RestoreResult> {
  const { target } = input.plan;
  const platform = platformOf(deps, input);
  return withScope(platform, async (scope) => {
    const started = Date.now();
    const conn = await scope.connect(target.handle, target.environment);
    scope.progress({ phase: 'resetting target' });
    await resetTarget(conn, { adminRole: platform.adminRole });
    scope.progress({ phase: 'restoring', bytes: dump.bytes });
    const result = await restoreDump(conn, dump.path, {
      expected: expectedErrorsFor(platform, input.plan),
      // The dump may have been written on another worker: the check raises DumpMissingError and the
      // workflow dumps again.
      sha256: dump.sha256,
      signal: cancellationSignal(),
      onProgress: (p) => scope.progress({ phase: 'restoring', ...p }),
    });
    if (result.connectionLost) {
      // A dropped tunnel or a restarted server is worth a retry: the next attempt resets the target first.
      throw new Error(
        'the connection to the target was lost during the restore; it is retried from a reset target',
      );
    }
    if (result.unexpected.length > 0) {
      throw unexpectedRestoreErrors('the restore failed', result.unexpected, result.expected);
    }
    return { expectedErrors: result.expected, durationMs: Date.now() - started };
  });
}
