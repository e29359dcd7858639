import { hostname } from 'node:os';
import { dirname } from 'node:path';
import { Context } from '@temporalio/activity';
import type { MigrationInput, WorkspaceClaim } from './contract';
import { type ActivityDeps, dumpPathOf } from './deps';

/**
 * The guide's "workspace": the worker that takes this activity from the shared queue becomes the one that
 * dumps, restores and removes the dump, through the task queue of its host and work directory. Nothing is
 * written, so a retry (on any worker) simply names another workspace before anything was put there.
 */
export async function claimWorkspace(deps: ActivityDeps, input: MigrationInput): Promise<WorkspaceClaim> {
  return {
    taskQueue: deps.hostTaskQueue ?? Context.current().info.taskQueue,
    host: hostname(),
    dumpDir: dirname(dumpPathOf(deps, input)),
  };
}
