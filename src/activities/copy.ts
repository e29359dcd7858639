// The copy of method dump: two activities, dumpSource and restoreTarget, on the claimed worker's queue. The
// plan's copy.strategy picks how: `guide` (default), the guide's one pg_dumpall file restored by psql, one
// file an operator can read and audit and exactly the commands the guide documents; or `parallel`,
// pg_dumpall --globals-only for the roles and pg_dump/pg_restore -j per database, faster where the source
// has several large tables and the worker several cores (copy-parallel.ts).
import type { DumpResult, MigrationInput, RestoreResult } from './contract';
import type { ActivityDeps } from './deps';
import { dumpSourceGuide, restoreTargetGuide } from './copy-guide';
import { dumpSourceParallel, restoreTargetParallel } from './copy-parallel';

// A plan recorded before copy.strategy existed has none: the guide's, as then.
const isParallel = (input: MigrationInput) => input.plan.copy?.strategy === 'parallel';

export async function dumpSource(deps: ActivityDeps, input: MigrationInput): Promise<DumpResult> {
  return isParallel(input) ? dumpSourceParallel(deps, input) : dumpSourceGuide(deps, input);
}

/** Resets the target, restores the dump, carries what the dump leaves out; only expected errors pass. */
export async function restoreTarget(
  deps: ActivityDeps,
  input: MigrationInput,
  dump: DumpResult,
): Promise<RestoreResult> {
  return isParallel(input) ? restoreTargetParallel(deps, input, dump) : restoreTargetGuide(deps, input, dump);
}
