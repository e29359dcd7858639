// The rehearsal's own activities and the ownership rule they share with createTarget, against an in-memory
// platform: which backup, which size, whose database; and restore errors carried as structured details.
import { ApplicationFailure } from '@temporalio/activity';
import { MockActivityEnvironment } from '@temporalio/testing';
import type { MigrationInput } from '../src/activities/contract';
import { createTarget } from '../src/activities/create-target';
import { isOwnedBy, ownerLabel, type ActivityDeps } from '../src/activities/deps';
import { unexpectedRestoreErrors } from '../src/activities/expected-errors';
import { findLatestBackup, restoreBackupCopy } from '../src/activities/rehearsal';
import { withScope } from '../src/activities/scope';
import { NotFoundError, TargetExistsError } from '../src/errors';
import { validatePlan } from '../src/plan/load';
import type { BackupInfo, DatabaseInfo, Platform, RestoreBackupSpec } from '../src/platform/platform';

/** Just enough of a platform: databases by handle, backups, and the restores asked for. */
function fakePlatform(name: string, databases: DatabaseInfo[], backups: BackupInfo[] = []) {
  const restores: RestoreBackupSpec[] = [];
  const created: string[] = [];
  const platform = {
    name,
    adminRole: 'aptible',
    expectedRestoreErrors: [],
    getDatabase: async (handle: string, environment: string) =>
      databases.find((d) => d.handle === handle && d.environment === environment),
    listBackups: async () => backups,
    restoreBackup: async (spec: RestoreBackupSpec) => {
      restores.push(spec);
      return {
        handle: spec.handle,
        environment: spec.environment,
        version: 14,
        containerSizeMb: spec.containerSizeMb,
      };
    },
    createDatabase: async (spec: { handle: string; environment: string; version: string }) => {
      created.push(spec.handle);
      return { handle: spec.handle, environment: spec.environment, version: Number(spec.version) };
    },
  } as unknown as Platform;
  const deps: ActivityDeps = { platformFor: () => platform, workDir: '/nowhere' };
  return { platform, deps, restores, created };
}

const RUN_STARTED = Date.parse('2026-11-24T10:00:00.500Z');
const before = '2026-11-24T09:59:59.000Z';
const sameSecond = '2026-11-24T10:00:00.000Z'; // Aptible reports whole seconds
const after = '2026-11-24T10:05:00.000Z';

function input(platform = 'local', environment = 'local'): MigrationInput {
  return {
    migrationId: 'pgshift-rehearsal-x',
    runId: 'run-1',
    startedAt: RUN_STARTED,
    plan: validatePlan({
      platform,
      source: { handle: 'shop-pg14', environment },
      target: { handle: 'shop-pg17', version: '17', containerSize: 512 },
    }),
  };
}

const PRODUCTION: DatabaseInfo = {
  handle: 'shop-pg14',
  environment: 'local',
  version: 14,
  containerSizeMb: 2048,
};

describe('isOwnedBy', () => {
  const i = input();
  test('a platform that records the creator answers exactly', () => {
    expect(isOwnedBy({ ...PRODUCTION, createdBy: ownerLabel(i) }, i)).toBe(true);
    expect(isOwnedBy({ ...PRODUCTION, createdBy: 'someone-else' }, i)).toBe(false);
  });

  test('without a recorded creator: ours only if made since the run started, on any attempt', async () => {
    const made = (createdAt?: string) => ({ ...PRODUCTION, createdAt });
    expect(isOwnedBy(made(after), i)).toBe(true);
    expect(isOwnedBy(made(sameSecond), i)).toBe(true);
    expect(isOwnedBy(made(before), i)).toBe(false);
    expect(isOwnedBy(made(undefined), i)).toBe(false); // no creation time: never ours
    expect(isOwnedBy(made(after), { ...i, startedAt: undefined })).toBe(false);
    // A retry changes nothing: an older database is not ours however often we ask.
    expect(
      await new MockActivityEnvironment({ attempt: 3 }).run(async () => isOwnedBy(made(before), i)),
    ).toBe(false);
  });
});

describe('createTarget on a platform that records no creator', () => {
  test('a database older than the run is someone else’s: TargetExistsError, nothing created', async () => {
    const target: DatabaseInfo = {
      handle: 'shop-pg17',
      environment: 'local',
      version: 17,
      createdAt: before,
    };
    const { deps, created } = fakePlatform('aptible', [target]);
    await expect(
      new MockActivityEnvironment({ attempt: 2 }).run(() => createTarget(deps, input())),
    ).rejects.toThrow(TargetExistsError);
    expect(created).toEqual([]);
  });

  test('one made since the run started is what an earlier attempt created', async () => {
    const target: DatabaseInfo = { handle: 'shop-pg17', environment: 'local', version: 17, createdAt: after };
    const { deps, created } = fakePlatform('aptible', [target]);
    const result = await new MockActivityEnvironment({ attempt: 2 }).run(() => createTarget(deps, input()));
    expect(result).toMatchObject({ handle: 'shop-pg17', foundExisting: true });
    expect(created).toEqual([]);
  });
});

describe('findLatestBackup', () => {
  test('the newest backup, without anything else', async () => {
    const { deps } = fakePlatform(
      'local',
      [PRODUCTION],
      [
        { id: '1', databaseHandle: 'shop-pg14', environment: 'local', createdAt: '2025-01-01T00:00:00Z' },
        {
          id: '3',
          databaseHandle: 'shop-pg14',
          environment: 'local',
          createdAt: '2025-03-01T00:00:00Z',
          sizeBytes: 99,
        },
        { id: '2', databaseHandle: 'shop-pg14', environment: 'local', createdAt: '2025-02-01T00:00:00Z' },
      ],
    );
    expect(await findLatestBackup(deps, input())).toEqual({
      id: '3',
      createdAt: '2025-03-01T00:00:00Z',
      sizeBytes: 99,
    });
  });

  test('none: NotFoundError saying how to take one, per platform', async () => {
    const local = fakePlatform('local', [PRODUCTION]);
    await expect(findLatestBackup(local.deps, input())).rejects.toThrow(NotFoundError);
    await expect(findLatestBackup(local.deps, input())).rejects.toThrow(
      /pgshift local backup:create shop-pg14/,
    );
    const aptible = fakePlatform('aptible', [{ ...PRODUCTION, environment: 'prod' }]);
    await expect(findLatestBackup(aptible.deps, input('aptible', 'prod'))).rejects.toThrow(
      /aptible db:backup shop-pg14 --environment prod/,
    );
  });
});

describe('restoreBackupCopy', () => {
  test("restores into <source>-rehearsal with production's container size, labelled with the run", async () => {
    const { deps, restores } = fakePlatform('local', [PRODUCTION]);
    const copy = await restoreBackupCopy(deps, input(), '7');
    expect(restores).toEqual([
      {
        backupId: '7',
        handle: 'shop-pg14-rehearsal',
        environment: 'local',
        containerSizeMb: 2048,
        createdBy: 'pgshift-rehearsal-x#run-1',
      },
    ]);
    expect(copy).toEqual({
      handle: 'shop-pg14-rehearsal',
      environment: 'local',
      version: 14,
      containerSizeMb: 2048,
      foundExisting: false,
    });
  });

  test("the plan's target size when the platform does not report production's", async () => {
    const { deps, restores } = fakePlatform('local', [{ ...PRODUCTION, containerSizeMb: undefined }]);
    await restoreBackupCopy(deps, input(), '7');
    expect(restores[0].containerSizeMb).toBe(512);
  });

  test('a copy of this run is found again; anyone else’s is left alone', async () => {
    const copy = { handle: 'shop-pg14-rehearsal', environment: 'local', version: 14 };
    const ours = fakePlatform('local', [PRODUCTION, { ...copy, createdBy: 'pgshift-rehearsal-x#run-1' }]);
    expect(await restoreBackupCopy(ours.deps, input(), '7')).toMatchObject({ foundExisting: true });
    expect(ours.restores).toEqual([]);

    const theirs = fakePlatform('local', [PRODUCTION, { ...copy, createdBy: 'pgshift-rehearsal-x#run-0' }]);
    await expect(restoreBackupCopy(theirs.deps, input(), '7')).rejects.toThrow(TargetExistsError);
    expect(theirs.restores).toEqual([]);
  });
});

describe('unexpected restore errors', () => {
  test('are a non-retryable failure carrying [unexpected, expected], capped for the history', () => {
    const many = Array.from({ length: 205 }, (_, n) => `ERROR:  problem ${n}`);
    const failure = unexpectedRestoreErrors('the restore failed', many, ['ERROR:  role "x" already exists']);
    expect(failure).toBeInstanceOf(ApplicationFailure);
    expect(failure.type).toBe('UnexpectedRestoreErrors');
    expect(failure.nonRetryable).toBe(true);
    expect(failure.message).toContain('205 unexpected error(s)');
    const [unexpected, expected] = failure.details as [string[], string[]];
    expect(unexpected).toHaveLength(201);
    expect(unexpected[200]).toBe('... and 5 more');
    expect(expected).toEqual(['ERROR:  role "x" already exists']);
  });

  test("the activity scope scrubs a failure's details of the secrets it knows", async () => {
    const { platform } = fakePlatform('local', []);
    const err = await withScope(platform, async (scope) => {
      scope.secret('s3cr3t-password');
      throw unexpectedRestoreErrors('the restore failed', ['ERROR:  bad password s3cr3t-password'], []);
    }).catch((e: unknown) => e as ApplicationFailure);
    expect(JSON.stringify(err.details)).not.toContain('s3cr3t-password');
    expect((err.details as string[][])[0][0]).toContain('***');
  });
});
