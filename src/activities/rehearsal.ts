// The rehearsal's own steps, from the guide's "Test the upgrade": find the production database's latest
// backup and restore it into a copy of the same size. Everything else a rehearsal does is the migration's
// own activities, run against that copy. Production is only read (its backups and its container size).
import type { BackupRef, MigrationInput, RestoredCopy } from './contract';
import { type ActivityDeps, isOwnedBy, ownerLabel, platformOf } from './deps';
import { withScope } from './scope';
import { NotFoundError, TargetExistsError } from '../errors';
import { copyHandleOf } from '../lib/rehearsal-handles';

/** How the operator takes a backup on each platform, for the error that says there is none. */
function backupCommand(platform: string, handle: string, environment: string): string {
  return platform === 'local'
    ? `pgshift local backup:create ${handle}`
    : `aptible db:backup ${handle} --environment ${environment}`;
}

export async function findLatestBackup(deps: ActivityDeps, input: MigrationInput): Promise<BackupRef> {
  const { source } = input.plan;
  const platform = platformOf(deps, input);
  return withScope(platform, async () => {
    const backups = await platform.listBackups(source.handle, source.environment);
    // The platform lists newest first; sorting again costs nothing and does not depend on it.
    const latest = [...backups].sort((a, b) => Date.parse(b.createdAt) - Date.parse(a.createdAt))[0];
    if (!latest) {
      throw new NotFoundError(
        `database "${source.handle}" in "${source.environment}" has no backup to rehearse with; take one ` +
          `(\`${backupCommand(platform.name, source.handle, source.environment)}\`) and rehearse again`,
      );
    }
    return {
      id: latest.id,
      createdAt: latest.createdAt,
      ...(latest.sizeBytes !== undefined ? { sizeBytes: latest.sizeBytes } : {}),
    };
  });
}

/**
 * The guide's `aptible backup:restore ID --handle SOURCE-rehearsal --container-size N`: the copy gets the
 * production database's container size (the plan's target size when the platform does not report it), so
 * its dump takes about as long as production's will.
 */
export async function restoreBackupCopy(
  deps: ActivityDeps,
  input: MigrationInput,
  backupId: string,
): Promise<RestoredCopy> {
  const { source, target } = input.plan;
  const platform = platformOf(deps, input);
  const handle = copyHandleOf(input.plan);
  const environment = source.environment;
  return withScope(platform, async () => {
    const existing = await platform.getDatabase(handle, environment);
    if (existing) {
      if (!isOwnedBy(existing, input)) {
        throw new TargetExistsError(
          `the rehearsal restores the backup into "${handle}" in "${environment}", and a database of that name ` +
            'exists that this rehearsal did not create; it was left alone. Remove or rename it, then rehearse again',
        );
      }
      return { ...copyOf(existing), foundExisting: true };
    }
    const production = await platform.getDatabase(source.handle, source.environment);
    if (!production) {
      throw new NotFoundError(`database "${source.handle}" in "${source.environment}" does not exist`);
    }
    const restored = await platform.restoreBackup({
      backupId,
      handle,
      environment,
      containerSizeMb: production.containerSizeMb ?? target.containerSize,
      createdBy: ownerLabel(input),
    });
    return { ...copyOf(restored), foundExisting: false };
  });
}

function copyOf(db: {
  handle: string;
  environment: string;
  version: number;
  containerSizeMb?: number;
}): Omit<RestoredCopy, 'foundExisting'> {
  return {
    handle: db.handle,
    environment: db.environment,
    version: db.version,
    ...(db.containerSizeMb !== undefined ? { containerSizeMb: db.containerSizeMb } : {}),
  };
}
