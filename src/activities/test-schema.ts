import { mkdir, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { MigrationInput, SchemaTestResult } from './contract';
import { type ActivityDeps, dumpPathOf, isOwnedBy, ownerLabel, platformOf } from './deps';
import { cancellationSignal, withScope } from './scope';
import { log } from '@temporalio/activity';
import { PreflightError, TargetExistsError } from '../errors';
import { dumpAll } from '../pg/dump';
import { serverMajorVersion } from '../pg/inspect';
import { restoreDump } from '../pg/restore';
import { expectedErrorsFor, unexpectedRestoreErrors } from './expected-errors';

const SCRATCH_SUFFIX = '-schema-test';

/** The scratch database's handle: derived from the target so a retry finds (and replaces) its own. */
export function scratchHandle(input: MigrationInput): string {
  return `${input.plan.target.handle.slice(0, 63 - SCRATCH_SUFFIX.length)}${SCRATCH_SUFFIX}`;
}

/**
 * The guide's "test the schema" step: a schema-only dump restored into a scratch database of the
 * target version, classified like a real restore, then removed — all before any downtime.
 *
 * The scratch is a database server of its own, not the new target: a pg_dumpall restores roles, whole
 * databases and objects in template1 and postgres, so testing in the target would leave it to resetTarget
 * to make the target pristine again, which it does not fully (tablespaces, settings and comments of the
 * roles it keeps survive). The migration makes the scratch and the target side by side instead, so the
 * extra server costs no wall time.
 */
export async function testSchema(deps: ActivityDeps, input: MigrationInput): Promise<SchemaTestResult> {
  const { plan } = input;
  const platform = platformOf(deps, input);
  return withScope(platform, async (scope) => {
    const source = await scope.connect(plan.source.handle, plan.source.environment);
    if ((await serverMajorVersion(source)) === Number(plan.target.version)) {
      return { skipped: true, expectedErrors: [] };
    }
    const handle = scratchHandle(input);
    const env = plan.target.environment;
    const owner = ownerLabel(input);
    const path = join(dirname(dumpPathOf(deps, input)), 'schema.sql');
    await mkdir(dirname(path), { recursive: true, mode: 0o700 });
    // Never touch a database this run did not make: the scratch name could be someone's real database.
    const existing = await platform.getDatabase(handle, env);
    if (existing && !isOwnedBy(existing, input)) {
      throw new PreflightError(
        `the schema test needs a scratch database "${handle}" in "${env}", and a database of that name exists ` +
          'that this migration did not create; rename or remove it, or choose another target.handle',
      );
    }
    let created = false;
    try {
      // A scratch database left by an earlier attempt of this run is replaced, not reused.
      if (existing) await platform.deprovisionDatabase(handle, env);
      // Ours to remove even when the create fails half-way, unless it says the handle is taken: then the
      // database under it is someone else's.
      created = true;
      const making = platform
        .createDatabase({
          handle,
          environment: env,
          version: plan.target.version,
          diskSizeGb: plan.target.diskSize,
          containerSizeMb: plan.target.containerSize,
          createdBy: owner,
        })
        .catch((err: unknown) => {
          if (err instanceof TargetExistsError) created = false;
          throw err;
        });
      // The schema is dumped while the scratch database is made: neither needs the other. A failed create
      // stops the dump; both have ended before the clean-up below removes the file and the database.
      const noScratch = new AbortController();
      const dumping = dumpAll(source, path, {
        adminRole: platform.adminRole,
        schemaOnly: true,
        signal: anySignal(cancellationSignal(), noScratch.signal),
        onProgress: (bytes) => scope.progress({ bytes }),
      });
      const [made, dumped] = await Promise.allSettled([
        making.catch((err: unknown) => {
          noScratch.abort(err);
          throw err;
        }),
        dumping,
      ]);
      if (made.status === 'rejected') throw made.reason;
      if (dumped.status === 'rejected') throw dumped.reason;
      const scratch = await scope.connect(handle, env);
      const result = await restoreDump(scratch, path, {
        expected: expectedErrorsFor(platform, plan),
        signal: cancellationSignal(),
        onProgress: (p) => scope.progress({ phase: 'restoring schema', ...p }),
      });
      if (result.unexpected.length > 0) {
        throw unexpectedRestoreErrors(
          `the schema does not restore on PostgreSQL ${plan.target.version}`,
          result.unexpected,
          result.expected,
        );
      }
      return { skipped: false, expectedErrors: result.expected };
    } finally {
      await scope.close();
      await rm(path, { force: true });
      // A failed clean-up must not hide the schema test's own outcome (its exact error lines).
      if (created) {
        await platform.deprovisionDatabase(handle, env).catch((err: Error) => {
          log.warn('the scratch database of the schema test could not be removed; remove it by hand', {
            handle,
            environment: env,
            error: (scope.scrub(err) as Error).message,
          });
        });
      }
    }
  });
}

function anySignal(...signals: (AbortSignal | undefined)[]): AbortSignal {
  return AbortSignal.any(signals.filter((s): s is AbortSignal => s !== undefined));
}
