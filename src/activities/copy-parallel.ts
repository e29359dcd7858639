// Copy strategy `parallel`: the roles by pg_dumpall --globals-only through the password filter, then each
// database by pg_dump -Fd -j N and pg_restore -j N (src/pg/parallel). The target it yields is the one the
// guide's strategy yields; the dump is a directory on the claimed worker, as the guide's file is.
import { dirname, join, resolve } from 'node:path';
import type { DumpResult, MigrationInput, RestoreResult } from './contract';
import { type ActivityDeps, dumpPathOf, platformOf } from './deps';
import { restoreAround } from './copy-common';
import { cancellationSignal, withScope } from './scope';
import { DumpMissingError } from '../errors';
import { dumpParallel } from '../pg/parallel/dump';
import { readVerifiedManifest } from '../pg/parallel/manifest';
import { restoreParallel } from '../pg/parallel/restore';
import { BULK_LOAD_SETTINGS } from '../pg/parallel/session-settings';

/** `<work dir>/dumps/<migration id>/parallel`: beside the guide's dump.sql, removed with it by removeDump. */
export function parallelDumpDir(deps: ActivityDeps, input: MigrationInput): string {
  return join(dirname(dumpPathOf(deps, input)), 'parallel');
}

export async function dumpSourceParallel(deps: ActivityDeps, input: MigrationInput): Promise<DumpResult> {
  const { source } = input.plan;
  const platform = platformOf(deps, input);
  return withScope(platform, async (scope) => {
    const started = Date.now();
    const dir = parallelDumpDir(deps, input);
    const conn = await scope.connect(source.handle, source.environment);
    const result = await dumpParallel(conn, dir, {
      adminRole: platform.adminRole,
      skipDatabases: input.plan.accept?.skipDatabases ?? [],
      jobs: input.plan.copy?.jobs,
      signal: cancellationSignal(),
      onProgress: (p) => scope.progress(p),
    });
    return {
      path: dir,
      bytes: result.bytes,
      sha256: result.sha256,
      droppedStatements: result.droppedStatements,
      durationMs: Date.now() - started,
    };
  });
}

/**
 * Checks the dump is the one the dump step wrote (DumpMissingError: the workflow dumps again), resets the
 * target, restores, and carries what the dumps leave out of `postgres` and `template1`; only the plan's
 * expected errors pass.
 */
export async function restoreTargetParallel(
  deps: ActivityDeps,
  input: MigrationInput,
  dump: DumpResult,
  freshTarget = false,
): Promise<RestoreResult> {
  const platform = platformOf(deps, input);
  return withScope(platform, async (scope) => {
    const started = Date.now();
    // The directory is this worker's own for this migration, never a path taken from the input.
    const dir = parallelDumpDir(deps, input);
    if (resolve(dump.path) !== dir) {
      throw new DumpMissingError(
        `the dump was written to ${dump.path}, not to this worker's ${dir} (another worker, or another ` +
          'work directory); the dump is taken anew',
      );
    }
    const manifest = await readVerifiedManifest(dir, dump.sha256);
    const { expectedErrors } = await restoreAround(
      scope,
      input,
      platform,
      { freshTarget, asyncCommit: true },
      (conn, expected) =>
        restoreParallel(conn, dir, manifest, {
          expected,
          sessionSettings: BULK_LOAD_SETTINGS,
          signal: cancellationSignal(),
          onProgress: (p) => scope.progress({ phase: 'restoring', ...p }),
        }),
    );
    return { expectedErrors, durationMs: Date.now() - started };
  });
}
