// The copy of method dump: two activities, dumpSource and restoreTarget, on the claimed worker's queue. The
// plan's copy.strategy picks how: `guide` (default), the guide's one pg_dumpall file restored by psql, one
// file an operator can read and audit and exactly the commands the guide documents; `stream`, the same
// commands piped with no file, the restore step dumping as it restores (copy-stream.ts); or `parallel`,
// pg_dumpall --globals-only for the roles and pg_dump/pg_restore -j per database, faster where the source
// has several large tables and the worker several cores (copy-parallel.ts).
import type { DumpResult, MigrationInput, RestoreResult, RestoreTargetOptions } from './contract';
import type { ActivityDeps } from './deps';
import { dumpSourceGuide, restoreTargetGuide } from './copy-guide';
import { dumpSourceParallel, restoreTargetParallel } from './copy-parallel';
import { dumpSourceStream, restoreTargetStream } from './copy-stream';

// A plan recorded before copy.strategy existed has none: the guide's, as then.
const strategyOf = (input: MigrationInput) => input.plan.copy?.strategy ?? 'guide';

export async function dumpSource(deps: ActivityDeps, input: MigrationInput): Promise<DumpResult> {
  const strategy = strategyOf(input);
  if (strategy === 'parallel') return dumpSourceParallel(deps, input);
  if (strategy === 'stream') return dumpSourceStream();
  return dumpSourceGuide(deps, input);
}

/** Resets the target, restores the dump, carries what the dump leaves out; only expected errors pass. */
export async function restoreTarget(
  deps: ActivityDeps,
  input: MigrationInput,
  dump: DumpResult,
  opts: RestoreTargetOptions = {},
): Promise<RestoreResult> {
  const fresh = opts.freshTarget === true;
  const strategy = strategyOf(input);
  if (strategy === 'parallel') return restoreTargetParallel(deps, input, dump, fresh);
  if (strategy === 'stream') return restoreTargetStream(deps, input, fresh);
  return restoreTargetGuide(deps, input, dump, fresh);
}
