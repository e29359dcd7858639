import { rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { MigrationInput, PurgeResult } from './contract';
import { type ActivityDeps, dumpPathOf, isOwnedBy, madeDuringRun, platformOf } from './deps';
import { withScope } from './scope';
import { NotOursError } from '../errors';

/** The guide's last step; the workflow only calls it when the plan asks for it. */
export async function deprovisionSource(deps: ActivityDeps, input: MigrationInput): Promise<void> {
  const { source } = input.plan;
  const platform = platformOf(deps, input);
  await withScope(platform, () => platform.deprovisionDatabase(source.handle, source.environment));
}

/** Compensation: remove the target, but never a database some other migration or person created. */
export async function deprovisionTarget(deps: ActivityDeps, input: MigrationInput): Promise<void> {
  const { target } = input.plan;
  const platform = platformOf(deps, input);
  await withScope(platform, async () => {
    const existing = await platform.getDatabase(target.handle, target.environment);
    if (!existing) return;
    if (!isOwnedBy(existing, input)) {
      throw new NotOursError(
        `database "${target.handle}" in "${target.environment}" was not created by this run ` +
          `(${existing.createdBy ? `created by ${existing.createdBy}` : 'it is older than the run'}), so it was left in place; ` +
          'if it is a leftover of this migration, deprovision it by hand',
      );
    }
    await platform.deprovisionDatabase(target.handle, target.environment);
  });
}

/** Compensation: the final backups the platform keeps of the deprovisioned target, and only those. */
export async function purgeTargetBackups(deps: ActivityDeps, input: MigrationInput): Promise<PurgeResult> {
  const { target } = input.plan;
  const platform = platformOf(deps, input);
  return withScope(platform, async () => {
    const orphaned = await platform.listOrphanedBackups(target.environment);
    // Final backups of an older database that had this handle are someone's to keep: only those taken
    // since this run started (at the deprovision it just did) are the target's.
    const ours = orphaned.filter(
      (b) =>
        b.databaseHandle === target.handle &&
        b.environment === target.environment &&
        madeDuringRun(b.createdAt, input),
    );
    for (const backup of ours) await platform.purgeBackup(backup.id);
    return { purged: ours.map((b) => b.id) };
  });
}

/** A dump holds every row and the roles' password hashes: it does not outlive the migration. */
export async function removeDump(deps: ActivityDeps, input: MigrationInput): Promise<void> {
  await rm(dirname(dumpPathOf(deps, input)), { recursive: true, force: true });
}
