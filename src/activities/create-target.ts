import type { CreateTargetResult, MigrationInput } from './contract';
import { type ActivityDeps, ownerLabel, platformOf } from './deps';
import { withScope } from './scope';
import { TargetExistsError } from '../errors';

/**
 * The guide's `aptible db:create`. Preflight proved the handle was free (or ours), so a database found
 * here was made by an earlier attempt of this activity; a platform that records the creator double-checks.
 */
export async function createTarget(deps: ActivityDeps, input: MigrationInput): Promise<CreateTargetResult> {
  const { target } = input.plan;
  const platform = platformOf(deps, input);
  return withScope(platform, async () => {
    const existing = await platform.getDatabase(target.handle, target.environment);
    if (existing) {
      if (existing.createdBy !== undefined && existing.createdBy !== ownerLabel(input)) {
        throw new TargetExistsError(
          `database "${target.handle}" in "${target.environment}" was created by ${existing.createdBy}, not this migration; choose another target.handle`,
        );
      }
      return {
        handle: target.handle,
        environment: target.environment,
        version: existing.version,
        foundExisting: true,
      };
    }
    const created = await platform.createDatabase({
      handle: target.handle,
      environment: target.environment,
      version: target.version,
      diskSizeGb: target.diskSize,
      containerSizeMb: target.containerSize,
      createdBy: ownerLabel(input),
    });
    return {
      handle: target.handle,
      environment: target.environment,
      version: created.version,
      foundExisting: false,
    };
  });
}
