// What the copy-strategy tests (parallel-copy, stream-copy) share: an activity's MigrationInput on their
// cluster pair, the admin's password hash, and an awaited failure.
import type { ApplicationFailure } from '@temporalio/common';
import type { MigrationInput } from '../../src/activities/contract';
import { validatePlan } from '../../src/plan/load';
import type { PlanInput } from '../../src/plan/schema';
import { type PgTarget, withClient } from '../../src/pg/connection';

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
