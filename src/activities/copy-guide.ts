// Copy strategy `guide`: the guide's one pg_dumpall file, restored by psql.
import { mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { DumpResult, MigrationInput, RestoreResult } from './contract';
import { type ActivityDeps, dumpPathOf, platformOf } from './deps';
import { cancellationSignal, withScope } from './scope';
import { restoreAround } from './copy-common';
import { dumpAll } from '../pg/dump';
import { restoreDump } from '../pg/restore';
import { totalDatabaseSize } from '../pg/inspect';

/** The guide's `pg_dumpall | grep -v 'ALTER ROLE aptible .*PASSWORD' > dump.sql`, heartbeating bytes written. */
export async function dumpSourceGuide(deps: ActivityDeps, input: MigrationInput): Promise<DumpResult> {
  const { source } = input.plan;
  const platform = platformOf(deps, input);
  return withScope(platform, async (scope) => {
    const started = Date.now();
    const path = dumpPathOf(deps, input);
    await mkdir(dirname(path), { recursive: true, mode: 0o700 });
    const conn = await scope.connect(source.handle, source.environment);
    // Only for the status's percentage and ETA: a dump must not fail for want of it.
    const sourceSizeBytes = await totalDatabaseSize(conn).catch(() => undefined);
    const result = await dumpAll(conn, path, {
      adminRole: platform.adminRole,
      signal: cancellationSignal(),
      onProgress: (bytes) => scope.progress({ bytes, sourceSizeBytes }),
    });
    return { path, ...result, durationMs: Date.now() - started };
  });
}

/**
 * The guide's `psql $TARGET_URL -f dump.sql`. The target is reset first, so a retry after a partial
 * restore yields exactly what a first attempt would; only the plan's expected errors are allowed.
 * Then what the dump leaves out of `postgres` and `template1` (comment, settings, privileges...) is
 * copied from the source, with its errors judged like the restore's.
 */
export async function restoreTargetGuide(
  deps: ActivityDeps,
  input: MigrationInput,
  dump: DumpResult,
  freshTarget = false,
): Promise<RestoreResult> {
  const platform = platformOf(deps, input);
  return withScope(platform, async (scope) => {
    const started = Date.now();
    const { expectedErrors } = await restoreAround(
      scope,
      input,
      platform,
      { freshTarget, asyncCommit: false },
      (conn, expected) => {
        scope.progress({ phase: 'restoring', bytesRead: 0, totalBytes: dump.bytes });
        return restoreDump(conn, dump.path, {
          expected,
          // The dump may have been written on another worker: the check raises DumpMissingError and the
          // workflow dumps again.
          sha256: dump.sha256,
          signal: cancellationSignal(),
          onProgress: (p) => scope.progress({ phase: 'restoring', ...p }),
        });
      },
    );
    return { expectedErrors, durationMs: Date.now() - started };
  });
}
