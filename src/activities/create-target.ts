import type { CreateTargetResult, MigrationInput } from './contract';
import { type ActivityDeps, isOwnedBy, ownerLabel, platformOf } from './deps';
import { withScope } from './scope';
import { TargetExistsError } from '../errors';

/**
 * The guide's `aptible db:create`. Preflight proved the handle was free (or ours), so a database found
 * here was normally made by an earlier attempt of this activity; but it may have appeared since, so it is
 * reused only when it is ours (see isOwnedBy: on a platform that records no creator, only if made since the run started).
 */
export async function createTarget(deps: ActivityDeps, input: MigrationInput): Promise<CreateTargetResult> {
  const { target } = input.plan;
  const platform = platformOf(deps, input);
  return withScope(platform, async () => {
    const existing = await platform.getDatabase(target.handle, target.environment);
    if (existing) {
      if (!isOwnedBy(existing, input)) {
        const by =
          existing.createdBy !== undefined ? `was created by ${existing.createdBy}` : 'already exists';
        throw new TargetExistsError(
          `database "${target.handle}" in "${target.environment}" ${by}, not by this migration; choose another target.handle`,
        );
      }
      return {
        handle: target.handle,
        environment: target.environment,
        version: existing.version,
        foundExisting: true,
      };
    }
    const spec = {
      handle: target.handle,
      environment: target.environment,
      version: target.version,
      diskSizeGb: target.diskSize,
      containerSizeMb: target.containerSize,
      createdBy: ownerLabel(input),
    };
    // Method logical where the platform makes the replica (Aptible's db:replicate --logical): the target is
    // created as a replica of the source, roles, schema and replication included.
    const created =
      input.plan.method === 'logical' && platform.replicateLogical
        ? await platform.replicateLogical({ ...spec, sourceHandle: input.plan.source.handle })
        : await platform.createDatabase(spec);
    return {
      handle: target.handle,
      environment: target.environment,
      version: created.version,
      foundExisting: false,
    };
  });
}
