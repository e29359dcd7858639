// Method logical, before the downtime: the target gets the roles and the schema, then each database
// subscribes to its source database and copies its rows while the services keep running on the source.
import { rm } from 'node:fs/promises';
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
} from './logical-common';
import { dropEverywhere, connectableDatabases, hasSubscriptions } from './logical-cleanup';
import { sourceConninfo, urlPassword } from './source-conninfo';
import { carryDatabaseProperties } from '../pg/database-properties';
import { dumpAll } from '../pg/dump';
import { classifyRestoreErrors } from '../pg/restore-errors';
import { resetTarget } from '../pg/reset';
import { restoreDump } from '../pg/restore';
import { sampleReplication as takeSample, startDatabaseReplication } from '../pg/logical/replication';
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
    for (;;) {
      signal?.throwIfAborted();
      const sample = byPlatform
        ? await samplePlatformReplication(source, target, byPlatform)
        : await takeSample(source, target, named);
      scope.progress({ phase: 'initial sync', ...sample });
      if (initialSyncDone(sample, databases)) return sample;
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
