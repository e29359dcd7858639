// Method logical, inside the downtime: with the services stopped, the target applies what is left, the
// schema is checked unchanged (DDL is not replicated), sequences are set (nor are they), and the copy is
// verified. Each step is idempotent: a retry repeats a wait or a comparison, never a change.
import { ApplicationFailure } from '@temporalio/activity';
import type {
  CatchUpResult,
  MigrationInput,
  ReplicationSample,
  SequenceSyncResult,
  VerificationReport,
} from './contract';
import { type ActivityDeps, platformOf } from './deps';
import { cancellationSignal, withScope } from './scope';
import { connectSides, replicatedDatabases, withNames } from './logical-common';
import { SchemaChangedError } from '../errors';
import { parseDuration } from '../lib/duration';
import { listDatabases } from '../pg/inspect';
import { waitForCatchUp } from '../pg/logical/replication';
import { schemaDifferences } from '../pg/logical/schema-diff';
import { copySequences } from '../pg/logical/sequences';
import { compareServers } from '../pg/verify';
import {
  isPlatformReplicationObject,
  platformReplications,
  replicaByPlatform,
  waitForPlatformCatchUp,
} from './logical-aptible';

const DEFAULT_CATCH_UP_MS = 120_000;
const SHOWN = 20;

/**
 * Waits until no transaction is open on the source and the target applied everything the source had
 * committed, then disables the subscriptions (native path), bounded by plan.cutover.catchUpTimeout: past it,
 * CatchUpTimeoutError (non-retryable) rolls the migration back. A retry enables them again and waits anew.
 */
export async function awaitCatchUp(deps: ActivityDeps, input: MigrationInput): Promise<CatchUpResult> {
  const platform = platformOf(deps, input);
  return withScope(platform, async (scope) => {
    const { source, target } = await connectSides(scope, input);
    const databases = await replicatedDatabases(source, input.plan);
    scope.progress({ phase: 'catching up' });
    const opts = {
      timeoutMs: parseDuration(input.plan.cutover.catchUpTimeout ?? '') ?? DEFAULT_CATCH_UP_MS,
      signal: cancellationSignal(),
      onProgress: (sample: ReplicationSample) => scope.progress({ phase: 'catching up', ...sample }),
    };
    if (replicaByPlatform(platform)) {
      return waitForPlatformCatchUp(source, target, await platformReplications(target, databases), opts);
    }
    // Disabled once caught up: a late commit on the source must not be applied over the services' writes.
    return waitForCatchUp(source, target, withNames(input, databases), { ...opts, disable: true });
  });
}

/**
 * DDL is not replicated: a schema change on the source since the copy would leave the target without it
 * (and usually stops the subscription). The cutover is refused, naming each difference.
 */
export async function checkSchemaUnchanged(deps: ActivityDeps, input: MigrationInput): Promise<void> {
  const platform = platformOf(deps, input);
  return withScope(platform, async (scope) => {
    const { source, target } = await connectSides(scope, input);
    const databases = await replicatedDatabases(source, input.plan);
    scope.progress({ phase: 'comparing schemas' });
    const onTarget = new Set(await listDatabases(target));
    // A database created on the source after the copy has no subscription: its rows would be lost.
    const missing = databases.filter((db) => !onTarget.has(db));
    const differences = [
      ...missing.map((db) => `database ${JSON.stringify(db)} was created on the source after the copy`),
      ...(await schemaDifferences(
        source,
        target,
        databases.filter((db) => onTarget.has(db)),
      )),
      // The platform's own replication objects (pglogical, the provider's publication) are not the schema.
    ].filter((d) => !(replicaByPlatform(platform) && isPlatformReplicationObject(d)));
    if (differences.length === 0) return;
    const more = differences.length > SHOWN ? `\n... and ${differences.length - SHOWN} more` : '';
    throw new SchemaChangedError(
      `the source's schema changed since it was copied to the target (${differences.length} difference` +
        `${differences.length === 1 ? '' : 's'}):\n${differences.slice(0, SHOWN).join('\n')}${more}\n` +
        'Logical replication does not carry schema changes (DDL), so the target lacks them and the cutover ' +
        'is refused. Run the migration again (it copies the schema as it is then) and make no schema change ' +
        'on the source while it replicates' +
        (differences.some(isNewObject)
          ? ': a table or database created since the copy is not replicated at all, so only a new migration ' +
            'carries it.'
          : '; a column or index change that cannot wait must be made on the target too, before the cutover.'),
      differences,
    );
  });
}

/**
 * A difference that a change made by hand on the target cannot settle: a table (or database) created on the
 * source since the copy is in no publication, so its rows would never arrive.
 */
function isNewObject(difference: string): boolean {
  return (
    /was created on the source after the copy$/.test(difference) ||
    /^[^:]+: (table|partitioned table) [^:]+: missing on target$/.test(difference)
  );
}

/** Sequences are not replicated: every sequence of the target is set to the source's. */
export async function syncSequences(deps: ActivityDeps, input: MigrationInput): Promise<SequenceSyncResult> {
  const platform = platformOf(deps, input);
  return withScope(platform, async (scope) => {
    const { source, target } = await connectSides(scope, input);
    const databases = await replicatedDatabases(source, input.plan);
    scope.progress({ phase: 'setting sequences' });
    return { sequences: await copySequences(source, target, databases) };
  });
}

/**
 * The row count of every table, the sequences and the whole schema, source against target, with the
 * services stopped. Counts rather than content hashes: the downtime must not grow with the data, and the
 * rows travelled by replication, which carries each one whole or not at all.
 */
export async function verifyReplica(deps: ActivityDeps, input: MigrationInput): Promise<VerificationReport> {
  const platform = platformOf(deps, input);
  return withScope(platform, async (scope) => {
    const { source, target } = await connectSides(scope, input);
    scope.progress({ phase: 'comparing' });
    const compared = await compareServers(source, target, {
      signal: cancellationSignal(),
      adminRole: platform.adminRole,
      // db:replicate --logical replicates every database but the templates: template1 stays the new image's.
      skipDatabases: [
        ...(input.plan.accept?.skipDatabases ?? []),
        ...(replicaByPlatform(platform) ? ['template1'] : []),
      ],
      content: 'counts',
      onProgress: (p) => scope.progress({ phase: 'comparing', ...p }),
    });
    const report = replicaByPlatform(platform) ? withoutPlatformObjects(compared) : compared;
    if (!report.ok) {
      throw ApplicationFailure.create({
        type: 'VerificationFailedError',
        nonRetryable: true,
        message: replicaFailureMessage(report),
        details: [report],
      });
    }
    return report;
  });
}

export function replicaFailureMessage(report: VerificationReport): string {
  const total = report.mismatchCount ?? report.mismatches.length;
  const more = total > SHOWN ? `\n... and ${total - SHOWN} more (the verification report lists them)` : '';
  return (
    `source and target disagree after the target caught up (${total} difference${total === 1 ? '' : 's'}):\n` +
    `${report.mismatches.slice(0, SHOWN).join('\n')}${more}\n` +
    'Row counts that differ mean something wrote to the source after the services were stopped (a writer ' +
    "that is not among the plan's services, or a client outside the platform), or a subscription stopped " +
    "applying changes (see the target's server log). Other differences are objects the schema copy did not " +
    'carry. The migration is rolled back; fix the cause and start again.'
  );
}

/** The verification without the platform's replication objects (pglogical's schemas, the provider's publication). */
function withoutPlatformObjects(report: VerificationReport): VerificationReport {
  const mismatches = report.mismatches.filter((m) => !isPlatformReplicationObject(m));
  const removed = report.mismatches.length - mismatches.length;
  if (removed === 0) return report;
  const mismatchCount = report.mismatchCount === undefined ? undefined : report.mismatchCount - removed;
  return { ...report, mismatches, mismatchCount, ok: (mismatchCount ?? mismatches.length) === 0 };
}
