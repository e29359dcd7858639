// What the copy-strategy tests (parallel-copy, stream-copy) share: their cluster pair with the rich fixture,
// an activity's MigrationInput on it, the admin's password hash, and an awaited failure.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ApplicationFailure } from '@temporalio/common';
import type { ActivityDeps } from '../../src/activities/deps';
import type { LocalPlatform } from '../../src/platform/local';
import type { DatabaseConnection } from '../../src/platform/platform';
import type { MigrationInput } from '../../src/activities/contract';
import { validatePlan } from '../../src/plan/load';
import type { PlanInput } from '../../src/plan/schema';
import { type PgTarget, withClient } from '../../src/pg/connection';
import { startClusterPair } from './cluster-pair';
import { CLOSED_DB, loadRichSource } from './rich-source';
import { type Snapshot, snapshotServer } from './server-snapshot';

/** The input the activities get, for source14 → target17 of `environment`, with `plan` on top. */
export function copyInput(
  migrationId: string,
  environment: string,
  plan: Partial<PlanInput>,
): MigrationInput {
  return {
    migrationId,
    plan: validatePlan({
      platform: 'local',
      source: { handle: 'source14', environment },
      target: { handle: 'target17', version: '17' },
      ...plan,
    }),
  };
}

/** The role's password hash on `t`: the restore must leave the target admin's as it was. */
export function passwordHashOf(t: PgTarget, role: string): Promise<string> {
  return withClient(t, 'postgres', async (c) => {
    const { rows } = await c.query('SELECT rolpassword FROM pg_authid WHERE rolname = $1', [role]);
    return rows[0].rolpassword as string;
  });
}

/** The rejection of `promise`, which must reject. */
export async function failureOf(promise: Promise<unknown>): Promise<Error & Partial<ApplicationFailure>> {
  return promise.then(
    () => {
      throw new Error('expected a failure');
    },
    (err: unknown) => err as Error & Partial<ApplicationFailure>,
  );
}

export interface RichCopyPair {
  home: string;
  /** The worker's work directory (PGSHIFT_WORK_DIR). */
  work: string;
  platform: LocalPlatform;
  source: DatabaseConnection;
  target: DatabaseConnection;
  deps: ActivityDeps;
  /** The source as the independent snapshot sees it, without the database no dump carries (CLOSED_DB). */
  sourceSnapshot: Snapshot;
  /** Ends both servers and removes the home. */
  close(): Promise<void>;
}

/** A 14 source holding the rich fixture and an empty 17 target, for a copy strategy's activities. */
export async function startRichCopyPair(environment: string, migrationId: string): Promise<RichCopyPair> {
  const home = await mkdtemp(join(tmpdir(), `pgshift-${environment}-`));
  const work = join(home, 'work');
  const { platform, source, target } = await startClusterPair(home, { environment, createdBy: migrationId });
  await loadRichSource(source, platform.adminRole);
  const sourceSnapshot = await snapshotServer(source, { adminRole: platform.adminRole });
  delete sourceSnapshot[`database ${CLOSED_DB}`];
  return {
    home,
    work,
    platform,
    source,
    target,
    deps: { platformFor: () => platform, workDir: work },
    sourceSnapshot,
    async close() {
      await source.close();
      await target.close();
      await platform.destroy();
      await rm(home, { recursive: true, force: true });
    },
  };
}
