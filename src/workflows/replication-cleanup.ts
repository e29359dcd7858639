// Dropping what replication created (subscriptions on the target, slots and publications on the source),
// on every path of the online migration: success, rollback, abort, cancellation, a failure after the point
// of no return. A slot left on the source keeps its WAL forever and fills the source's disk, so whatever
// could not be dropped is reported with the exact SQL to run. Runs in the workflow sandbox.
import { CancellationScope } from '@temporalio/workflow';
import type { MigrationInput, ReplicationCleanupResult } from '../activities/contract';
import { activity } from './activity-options';
import type { ReplicationStatus } from './definitions';
import { describeFailure } from './failures';
import { manualDropSql } from './replication-text';

const WHY = 'a slot left on the source keeps its WAL and fills its disk';

export interface ReplicationCleanup {
  /**
   * Drops everything (non-cancellable; the activity retries for about an hour). Resolves to undefined when
   * all is gone, else to the problem in words with the SQL to run by hand; never throws.
   */
  drop(): Promise<string | undefined>;
  /** What the last drop did, for the step's detail. */
  describe(): string;
}

export function replicationCleanup(
  input: MigrationInput,
  replication: ReplicationStatus,
): ReplicationCleanup {
  const dropReplication = activity(
    'dropReplication',
    'Drop the replication slots, publications and subscriptions',
  );

  async function drop(): Promise<string | undefined> {
    let result: ReplicationCleanupResult;
    try {
      result = await CancellationScope.nonCancellable(() => dropReplication(input));
    } catch (err) {
      const sql = replication.objects ? manualDropSql(replication.objects) : [];
      const todo = sql.length
        ? `Run by hand (${WHY}):\n${sql.join('\n')}`
        : "Drop this migration's subscriptions (pg_subscription) on the target, then its replication slots " +
          `(pg_replication_slots) and publications (pg_publication) on the source by hand: ${WHY}.`;
      return `${describeFailure(err)}. ${todo}`;
    }
    replication.cleanup = { dropped: result.dropped, leftBehind: result.leftBehind };
    if (result.leftBehind.length === 0) return undefined;
    return (
      `${result.leftBehind.length} replication object(s) could not be dropped. Run by hand (${WHY}):\n` +
      result.leftBehind.join('\n')
    );
  }

  function describe(): string {
    const dropped = replication.cleanup?.dropped ?? [];
    return dropped.length ? `dropped ${dropped.join(', ')}` : 'nothing left to drop';
  }

  return { drop, describe };
}
