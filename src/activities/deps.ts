import { join } from 'node:path';
import type { MigrationInput } from './contract';
import type { DatabaseInfo, Platform } from '../platform/platform';
import { BadInputError, PlatformError } from '../errors';
import { pathWithin } from '../lib/path-component';

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

/**
 * `<work dir>/dumps/<migration id>/dump.sql`. Its directory is removed with everything in it when the
 * migration ends, so it must be the migration's own: an id that would name the work directory, `dumps`
 * or anything outside them is refused (non-retryable) before anything is written or removed.
 */
export function dumpPathOf(deps: ActivityDeps, input: MigrationInput): string {
  try {
    return join(
      pathWithin(join(deps.workDir, 'dumps'), 'migration id', safeName(input.migrationId)),
      'dump.sql',
    );
  } catch (err) {
    throw new BadInputError(
      `${(err as Error).message}; start the migration again with an --id of letters, digits, ".", "_" or "-" ` +
        'that starts with a letter or digit',
    );
  }
}

/** The label a platform stores on what this run creates (see MigrationInput.runId). */
export function ownerLabel(input: MigrationInput): string {
  return input.runId ? `${input.migrationId}#${input.runId}` : input.migrationId;
}

/**
 * Whether a database found under a handle this run means to create is this run's own, so a retry may
 * reuse it and the cleanup may delete it. A platform that records the creator answers exactly. One that
 * cannot (createdBy undefined, e.g. Aptible) is answered by time: the run checked the handle free before
 * creating anything, so a database made after the run started is taken as its own, and one older than the
 * run never is — nor one whose creation time the platform does not report.
 */
export function isOwnedBy(existing: DatabaseInfo, input: MigrationInput): boolean {
  if (existing.createdBy !== undefined) return existing.createdBy === ownerLabel(input);
  return madeDuringRun(existing.createdAt, input);
}

/** Whether a platform object with this creation time came into being during this run. */
export function madeDuringRun(createdAt: string | undefined, input: MigrationInput): boolean {
  if (createdAt === undefined || input.startedAt === undefined) return false;
  // Aptible reports whole seconds: compare against the second the run started in.
  return Date.parse(createdAt) >= Math.floor(input.startedAt / 1000) * 1000;
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
