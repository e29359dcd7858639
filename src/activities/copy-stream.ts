// Copy strategy `stream`: the guide's dump and restore with no file in between, the roles through the
// password filter, the databases by `pg_dump | psql` side by side (src/pg/stream.ts). The workflow's dump step has nothing to
// write; the restore step resets the target and streams the source into it, so a retry of that one step
// (on any worker: there is no file to find) yields what a first attempt would.
import type { DumpResult, MigrationInput, RestoreResult } from './contract';
import { type ActivityDeps, platformOf } from './deps';
import { cancellationSignal, withScope } from './scope';
import { restoreAround } from './copy-common';
import { BULK_LOAD_SETTINGS } from '../pg/parallel/session-settings';
import { streamAll } from '../pg/stream';

/** Nothing to dump ahead: the restore step reads pg_dumpall as it runs. */
export function dumpSourceStream(): Promise<DumpResult> {
  return Promise.resolve({
    path: '',
    bytes: 0,
    sha256: '',
    droppedStatements: 0,
    durationMs: 0,
    streamed: true,
  });
}

/**
 * Resets the target (unless fresh), then streams the roles and every database into it (src/pg/stream.ts);
 * only the plan's expected errors pass. Then what the dumps leave out of `postgres` and `template1` is
 * carried from the source, as the guide's strategy does.
 */
export async function restoreTargetStream(
  deps: ActivityDeps,
  input: MigrationInput,
  freshTarget = false,
): Promise<RestoreResult> {
  const { source } = input.plan;
  const platform = platformOf(deps, input);
  return withScope(platform, async (scope) => {
    const started = Date.now();
    const src = await scope.connect(source.handle, source.environment);
    const { result, expectedErrors } = await restoreAround(
      scope,
      input,
      platform,
      { freshTarget, asyncCommit: true },
      (dst, expected) =>
        streamAll(src, dst, {
          adminRole: platform.adminRole,
          expected,
          skipDatabases: input.plan.accept?.skipDatabases ?? [],
          lanes: input.plan.copy?.jobs,
          sessionSettings: BULK_LOAD_SETTINGS,
          signal: cancellationSignal(),
          onProgress: (p) =>
            scope.progress({
              phase: 'streaming',
              bytesRead: p.bytes,
              totalBytes: p.sourceSizeBytes,
              databasesDone: p.databasesDone,
              databasesTotal: p.databasesTotal,
            }),
        }),
    );
    return {
      expectedErrors,
      streamed: { bytes: result.bytes, droppedStatements: result.droppedStatements },
      durationMs: Date.now() - started,
    };
  });
}
