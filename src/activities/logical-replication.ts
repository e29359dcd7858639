// Method logical, before the downtime: the target gets the roles and the schema, then each database
// subscribes to its source database and copies its rows while the services keep running on the source.
import { rm } from 'node:fs/promises';
import { ApplicationFailure } from '@temporalio/activity';
import { dirname, join } from 'node:path';
import type { MigrationInput, ReplicationSample, ReplicationStartResult, SchemaCopyResult } from './contract';
import { type ActivityDeps, dumpPathOf, platformOf } from './deps';
import { cancellationSignal, withScope } from './scope';
import { expectedErrorsFor, unexpectedRestoreErrors } from './expected-errors';
import {
  connectSides,
  pause,
  replicaIdentityTablesIn,
  replicatedDatabases,
  withNames,
  type NamedDatabase,
} from './logical-common';
import { type PgTarget, withClient } from '../pg/connection';
import { copied, subscriptionTables } from '../pg/logical/progress';
import { dropEverywhere, connectableDatabases, hasSubscriptions } from './logical-cleanup';
import { sourceConninfo, urlPassword } from './source-conninfo';
import { carryDatabaseProperties } from '../pg/database-properties';
import { dumpAll } from '../pg/dump';
import { classifyRestoreErrors } from '../pg/restore-errors';
import { resetTarget } from '../pg/reset';
import { restoreDump } from '../pg/restore';
import { sampleReplication as takeSample, startDatabaseReplication } from '../pg/logical/replication';
import { subscriberWorkersProblem } from '../pg/logical/readiness';
import { PreflightError } from '../errors';
import {
  nudgeSource,
  platformReplications,
  replicaByPlatform,
  samplePlatformReplication,
} from './logical-aptible';

const SYNC_POLL_MS = 2_000;

/**
 * Roles (with the admin-password filter) and every database's schema, from a schema-only pg_dumpall
 * restored like the dump method's restore; then the properties of `postgres` and `template1`. The target is
 * reset first, so a retry does what a first attempt would; a subscription an earlier run left there would
 * keep its databases from being dropped, so this migration's replication is dropped before the reset.
 */
export async function copySchema(deps: ActivityDeps, input: MigrationInput): Promise<SchemaCopyResult> {
  const { plan } = input;
  const platform = platformOf(deps, input);
  return withScope(platform, async (scope) => {
    const started = Date.now();
    const { source, target } = await connectSides(scope, input);
    const databases = await replicatedDatabases(source, plan);
    // db:replicate --logical copied the roles and every database's schema when it made the replica.
    if (replicaByPlatform(platform)) {
      return { databases, droppedStatements: 0, expectedErrors: [], byPlatform: true, durationMs: 0 };
    }
    const expected = expectedErrorsFor(platform, plan);
    // Its own name: the schema test's file lies in the same directory.
    const path = join(dirname(dumpPathOf(deps, input)), 'logical-schema.sql');
    try {
      scope.progress({ phase: 'resetting target' });
      if (await hasSubscriptions(target)) {
        const reached = async (conn: typeof source) => ({
          state: 'reached' as const,
          conn,
          databases: await connectableDatabases(conn),
        });
        await dropEverywhere(input, await reached(source), await reached(target));
      }
      await resetTarget(target, { adminRole: platform.adminRole });
      scope.progress({ phase: 'dumping schema', bytes: 0 });
      const dump = await dumpAll(source, path, {
        adminRole: platform.adminRole,
        schemaOnly: true,
        signal: cancellationSignal(),
        onProgress: (bytes) => scope.progress({ phase: 'dumping schema', bytes }),
      });
      scope.progress({ phase: 'restoring schema', bytesRead: 0, totalBytes: dump.bytes });
      const restored = await restoreDump(target, path, {
        expected,
        sha256: dump.sha256,
        signal: cancellationSignal(),
        onProgress: (p) => scope.progress({ phase: 'restoring schema', ...p }),
      });
      if (restored.unexpected.length > 0) {
        throw unexpectedRestoreErrors(
          `the schema does not restore on PostgreSQL ${plan.target.version}`,
          restored.unexpected,
          restored.expected,
        );
      }
      scope.progress({ phase: 'carrying the properties of postgres and template1' });
      const carried = classifyRestoreErrors(await carryDatabaseProperties(source, target), expected);
      const expectedErrors = [...restored.expected, ...carried.expected];
      if (carried.unexpected.length > 0) {
        throw unexpectedRestoreErrors(
          'the schema was copied, but the properties of databases postgres and template1 could not all be carried',
          carried.unexpected,
          expectedErrors,
        );
      }
      return {
        databases,
        droppedStatements: dump.droppedStatements,
        expectedErrors,
        durationMs: Date.now() - started,
      };
    } finally {
      // It holds the roles' password hashes.
      await rm(path, { force: true });
      await rm(`${path}.partial`, { force: true });
    }
  });
}

/**
 * Per database: a publication and a slot on the source, a subscription on the target that copies the rows
 * and then applies every change. Idempotent by name (names derive from the migration and the database).
 */
export async function startReplication(
  deps: ActivityDeps,
  input: MigrationInput,
): Promise<ReplicationStartResult> {
  const { plan } = input;
  const platform = platformOf(deps, input);
  return withScope(platform, async (scope) => {
    const { source, target } = await connectSides(scope, input);
    if (replicaByPlatform(platform)) {
      // db:replicate --logical started it when it made the replica: its names are read there.
      const found = await platformReplications(target, await replicatedDatabases(source, plan));
      return {
        databases: found.map((r) => r.database),
        publications: found.map((r) => `${r.database}/${r.provider}`),
        slots: found.map((r) => r.slot),
        subscriptions: found.map((r) => `${r.database}/${r.subscription}`),
        replicaIdentityFull: [],
      };
    }
    // How the target's server reaches the source: the apps' URL, not this worker's tunnel.
    const url = scope.secret(await platform.databaseUrl(plan.source.handle, plan.source.environment));
    scope.secret(urlPassword(url) ?? '');
    const databases = await replicatedDatabases(source, plan);
    const workers = await subscriberWorkersProblem(target, databases.length);
    if (workers) throw new PreflightError(workers);
    const accepted = plan.accept?.replicaIdentityFull ?? [];
    const result: ReplicationStartResult = {
      databases,
      publications: [],
      slots: [],
      subscriptions: [],
      replicaIdentityFull: [],
    };
    for (const [index, { name, names }] of withNames(input, databases).entries()) {
      scope.progress({ phase: 'starting replication', database: name, index, total: databases.length });
      const tables = replicaIdentityTablesIn(name, databases, accepted);
      await startDatabaseReplication(source, target, name, {
        names,
        sourceConninfo: scope.secret(sourceConninfo(url, name)),
        replicaIdentityFull: tables,
        signal: cancellationSignal(),
      });
      result.publications.push(`${name}/${names.publication}`);
      result.slots.push(names.slot);
      result.subscriptions.push(`${name}/${names.subscription}`);
      result.replicaIdentityFull.push(...tables.map((t) => `${name}.${t}`));
    }
    return result;
  });
}

/** Every database sampled, and every table of each copied (pg_subscription_rel state r or s). */
export function initialSyncDone(sample: ReplicationSample, databases: readonly string[]): boolean {
  return databases.every((name) => {
    const db = sample.databases.find((d) => d.name === name);
    return db !== undefined && db.tablesDone >= db.tablesTotal;
  });
}

/** Samples every few seconds, heartbeating the sample, until every table's initial copy is done. */
export async function awaitInitialSync(
  deps: ActivityDeps,
  input: MigrationInput,
): Promise<ReplicationSample> {
  const platform = platformOf(deps, input);
  return withScope(platform, async (scope) => {
    const { source, target } = await connectSides(scope, input);
    const databases = await replicatedDatabases(source, input.plan);
    const named = withNames(input, databases);
    const byPlatform = replicaByPlatform(platform)
      ? await platformReplications(target, databases)
      : undefined;
    const signal = cancellationSignal();
    const errors = new SyncErrorWatch();
    for (;;) {
      signal?.throwIfAborted();
      const sample = byPlatform
        ? await samplePlatformReplication(source, target, byPlatform)
        : await takeSample(source, target, named);
      scope.progress({ phase: 'initial sync', ...sample });
      if (initialSyncDone(sample, databases)) return sample;
      const failing = errors.observe(sample);
      if (failing) throw await syncFailure(target, named, failing);
      if (byPlatform) {
        await nudgeSource(
          source,
          sample.databases.filter((d) => d.tablesDone < d.tablesTotal).map((d) => d.name),
        );
      }
      await pause(SYNC_POLL_MS, signal);
    }
  });
}

/** Consecutive samples in which a database's table-sync errors rose before its initial copy is given up. */
export const SYNC_ERROR_SAMPLES = 10;

/**
 * Counts, per database, the samples in a row in which the table-sync error count rose (a table whose copy
 * fails is retried by the server forever, silently): the database past SYNC_ERROR_SAMPLES, or undefined.
 */
export class SyncErrorWatch {
  private last = new Map<string, number>();
  private rising = new Map<string, number>();

  observe(sample: ReplicationSample): { database: string; errors: number } | undefined {
    for (const db of sample.databases) {
      if (db.syncErrors === undefined) continue;
      const before = this.last.get(db.name);
      this.last.set(db.name, db.syncErrors);
      if (before === undefined) continue;
      const n = db.syncErrors > before ? (this.rising.get(db.name) ?? 0) + 1 : 0;
      this.rising.set(db.name, n);
      if (n >= SYNC_ERROR_SAMPLES) return { database: db.name, errors: db.syncErrors };
    }
    return undefined;
  }
}

/** The non-retryable failure for a database whose initial copy keeps failing, with its server's error. */
async function syncFailure(
  target: PgTarget,
  named: NamedDatabase[],
  failing: { database: string; errors: number },
): Promise<ApplicationFailure> {
  const db = named.find((d) => d.name === failing.database)!;
  const tables = await withClient(target, db.name, (c) => subscriptionTables(c, db.names.subscription)).catch(
    () => [],
  );
  const waiting = tables.filter((t) => !copied(t.state)).map((t) => `${t.schema}.${t.name}`);
  const message =
    `the initial copy of database ${JSON.stringify(db.name)} keeps failing: its subscription ` +
    `${db.names.subscription} counts ${failing.errors} table-sync error(s), rising for ${SYNC_ERROR_SAMPLES} ` +
    `samples in a row` +
    (waiting.length ? `; tables not copied yet: ${waiting.slice(0, 20).join(', ')}` : '') +
    ". Read the target's server log for the table-sync worker's error (a table whose definition differs, a " +
    'constraint the rows break, a missing extension), fix it, then migrate again. The migration rolls back.';
  return ApplicationFailure.nonRetryable(message, 'ReplicationSyncFailed');
}

/** One sample of progress and lag, for the status while the gate waits. */
export async function sampleReplication(
  deps: ActivityDeps,
  input: MigrationInput,
): Promise<ReplicationSample> {
  const platform = platformOf(deps, input);
  return withScope(platform, async (scope) => {
    const { source, target } = await connectSides(scope, input);
    const databases = await replicatedDatabases(source, input.plan);
    if (replicaByPlatform(platform)) {
      return samplePlatformReplication(source, target, await platformReplications(target, databases));
    }
    return takeSample(source, target, withNames(input, databases));
  });
}
