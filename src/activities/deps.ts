import { join } from 'node:path';
import { Context } from '@temporalio/activity';
import type { MigrationInput } from './contract';
import type { DatabaseInfo, Platform } from '../platform/platform';
import { PlatformError } from '../errors';

/** What the activities need from the worker that runs them. */
export interface ActivityDeps {
  /** The platform a plan names; throws for one this worker cannot serve. */
  platformFor(name: string): Platform;
  /** Where dumps are written on this worker (the guide's "workspace"). */
  workDir: string;
  /**
   * The task queue of this host and work directory, where the workflow sends what touches the dump file.
   * Absent (e.g. activities built for a test), claimWorkspace names the queue it ran on instead.
   */
  hostTaskQueue?: string;
}

export function platformOf(deps: ActivityDeps, input: MigrationInput): Platform {
  return deps.platformFor(input.plan.platform);
}

export function dumpPathOf(deps: ActivityDeps, input: MigrationInput): string {
  return join(deps.workDir, 'dumps', safeName(input.migrationId), 'dump.sql');
}

/** The label a platform stores on what this run creates (see MigrationInput.runId). */
export function ownerLabel(input: MigrationInput): string {
  return input.runId ? `${input.migrationId}#${input.runId}` : input.migrationId;
}

/**
 * Whether a database found under a handle this run means to create is this run's own, so a retry may
 * reuse it (and the cleanup may delete it). A platform that records the creator answers exactly. One that
 * cannot (createdBy undefined, e.g. Aptible) only lets us guess: on the activity's first attempt nothing of
 * ours can exist yet, so the database is someone else's; on a retry it is presumed to be what an earlier
 * attempt created before it failed (the handle was checked free on the first attempt).
 */
export function isOwnedBy(existing: DatabaseInfo, input: MigrationInput): boolean {
  if (existing.createdBy !== undefined) return existing.createdBy === ownerLabel(input);
  return activityAttempt() > 1;
}

/** The attempt of the running activity; 1 outside an activity (a direct call, e.g. from a test). */
function activityAttempt(): number {
  try {
    return Context.current().info.attempt;
  } catch {
    return 1;
  }
}

export function safeName(id: string): string {
  return id.replace(/[^A-Za-z0-9._-]/g, '_');
}

export function platformRegistry(platforms: Record<string, Platform>): (name: string) => Platform {
  return (name) => {
    const platform = platforms[name];
    if (!platform) {
      throw new PlatformError(
        `this worker has no "${name}" platform (it serves: ${Object.keys(platforms).join(', ')}); ` +
          'run a worker that supports it',
      );
    }
    return platform;
  };
}
