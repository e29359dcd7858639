import { mkdir, statfs } from 'node:fs/promises';
import type { MigrationInput, PreflightResult, RecordedService } from './contract';
import { type ActivityDeps, ownerLabel, platformOf } from './deps';
import { type ActivityScope, withScope } from './scope';
import type { Platform } from '../platform/platform';
import { NotFoundError, PreflightError, TargetExistsError } from '../errors';
import { assertCanDump, findClientTools } from '../pg/client-tools';
import { findParallelTools } from '../pg/parallel/tools';
import { checkFidelity } from '../pg/fidelity';
import { checkLogicalReadiness } from '../pg/logical/readiness';
import { platformReplicaProblems } from './logical-preflight-aptible';
import { serverMajorVersion, totalDatabaseSize } from '../pg/inspect';
import { parseDuration } from '../lib/duration';

/**
 * Cutover sets each config variable to the target's URL, and a rollback sets it to the source's URL.
 * That is a faithful round trip only when the variable holds the source's URL now; when it holds
 * something else (a pooler, extra options, nothing) the operator should know before any downtime.
 */
async function configWarnings(
  platform: Platform,
  input: MigrationInput,
  scope: ActivityScope,
): Promise<string[]> {
  const { plan } = input;
  if (plan.config.length === 0) return [];
  const sourceUrl = scope.secret(await platform.databaseUrl(plan.source.handle, plan.source.environment));
  const warnings: string[] = [];
  for (const c of plan.config) {
    const current = (await platform.getConfig(c.app, plan.source.environment))[c.variable];
    if (current === undefined) {
      warnings.push(`${c.app}: ${c.variable} is not set; cutover sets it to the target's URL`);
    } else if (current !== sourceUrl) {
      warnings.push(
        `${c.app}: ${c.variable} does not hold the source's URL (a pooler, or extra options?); cutover replaces it ` +
          "with the target's URL and a rollback with the source's URL, not with its current value",
      );
    }
  }
  return warnings;
}

// A migration's copy rarely takes longer than this; the cutover wait comes on top of it.
const COPY_ALLOWANCE_MS = 12 * 60 * 60 * 1000;

/** How long this worker's access to the platform must last for the migration to end without a new login. */
function sessionHorizonMs(input: MigrationInput): number {
  const { cutover } = input.plan;
  return COPY_ALLOWANCE_MS + (cutover.confirm ? (parseDuration(cutover.timeout) ?? 0) : 0);
}

/** One problem as it is; several as a list, so the operator fixes them all before trying again. */
function preflightProblems(problems: string[]): PreflightError {
  if (problems.length === 1) return new PreflightError(problems[0]);
  return new PreflightError(
    `preflight found ${problems.length} problems; fix them all, then start the migration again:\n` +
      problems.map((p) => `- ${p}`).join('\n'),
  );
}

/**
 * Everything that can be checked before any downtime, so a doomed migration fails while services still run.
 * The problems a plan or the source can fix (versions, disk, what the dump cannot carry) are all listed in
 * one PreflightError; a missing database, service or app stops it at once (NotFoundError).
 */
export async function preflight(deps: ActivityDeps, input: MigrationInput): Promise<PreflightResult> {
  const { plan } = input;
  const platform = platformOf(deps, input);
  return withScope(platform, async (scope) => {
    const warnings: string[] = [];
    const problems: string[] = [];
    // Strategy parallel also needs pg_restore: missing, it would fail inside the downtime.
    const tools =
      plan.method !== 'logical' && plan.copy?.strategy === 'parallel'
        ? await findParallelTools()
        : await findClientTools();

    const sourceInfo = await platform.getDatabase(plan.source.handle, plan.source.environment);
    if (!sourceInfo) {
      throw new NotFoundError(
        `source database "${plan.source.handle}" not found in environment "${plan.source.environment}": check source.handle and source.environment in the plan`,
      );
    }
    const source = await scope.connect(plan.source.handle, plan.source.environment);
    const sourceVersion = await serverMajorVersion(source);
    assertCanDump(tools.version, sourceVersion);

    const targetVersion = Number(plan.target.version);
    // pg_dump writes for its own version and later: PostgreSQL 14 rejects what pg_dump 15 writes for every
    // database (CREATE DATABASE ... LOCALE_PROVIDER), and only inside the downtime would that show.
    if (targetVersion < tools.version) {
      problems.push(
        `target.version ${targetVersion} is older than the client tools (pg_dumpall ${tools.version}), whose dump ` +
          `PostgreSQL ${targetVersion} does not accept; set PGSHIFT_PG_BIN to client tools of version ` +
          `${Math.max(sourceVersion, targetVersion)}, or choose target.version ${tools.version} or later`,
      );
    }
    if (targetVersion < sourceVersion) {
      problems.push(
        `target.version ${targetVersion} is older than the source (${sourceVersion}); dump and restore only moves to the same or a newer major version`,
      );
    }
    const versions = await platform.listVersions();
    if (!versions.includes(plan.target.version)) {
      problems.push(
        `${platform.name} cannot create PostgreSQL ${plan.target.version}; available versions: ${versions.join(', ')}`,
      );
    }

    const existing = await platform.getDatabase(plan.target.handle, plan.target.environment);
    if (existing && existing.createdBy !== ownerLabel(input)) {
      throw new TargetExistsError(
        `a database "${plan.target.handle}" already exists in environment "${plan.target.environment}" and this migration did not create it; ` +
          'choose another target.handle, or deprovision that database if it is a leftover',
      );
    }

    const sourceSizeBytes = await totalDatabaseSize(source);
    await mkdir(deps.workDir, { recursive: true, mode: 0o700 });
    const fs = await statfs(deps.workDir);
    const freeDiskBytes = fs.bavail * fs.bsize;
    // Method logical writes only the schema to this disk, copy strategy stream nothing: the rows go from
    // server to server.
    const writesDump = plan.method !== 'logical' && plan.copy?.strategy !== 'stream';
    if (writesDump && freeDiskBytes < sourceSizeBytes) {
      problems.push(
        `the dump goes to ${deps.workDir}, which has ${freeDiskBytes} bytes free, less than the source's ${sourceSizeBytes} bytes; ` +
          'free space there, or run the worker with PGSHIFT_WORK_DIR on a larger disk',
      );
    }

    const live = await platform.listServices(plan.source.environment);
    const services: RecordedService[] = plan.services.map((wanted) => {
      const found = live.find((s) => s.app === wanted.app && s.service === wanted.service);
      if (!found) {
        throw new NotFoundError(
          `service "${wanted.service}" of app "${wanted.app}" not found in environment "${plan.source.environment}": check services in the plan`,
        );
      }
      if (found.containerCount === 0)
        warnings.push(`${wanted.app}/${wanted.service} already runs 0 containers`);
      return { ...wanted, containerCount: found.containerCount };
    });
    for (const c of plan.config) {
      if (!live.some((s) => s.app === c.app)) {
        throw new NotFoundError(
          `app "${c.app}" (config ${c.variable}) not found in environment "${plan.source.environment}"`,
        );
      }
    }
    // Plans started before accept existed have none.
    const fidelity = await checkFidelity(source, { skipDatabases: plan.accept?.skipDatabases ?? [] });
    problems.push(...fidelity.refusals);
    // Method logical: what replication cannot carry (tables without a key, large objects...) and what the
    // source must allow (wal_level, slots, senders), all in the same list. It creates nothing.
    const logical =
      plan.method === 'logical'
        ? await checkLogicalReadiness(source, {
            skipDatabases: plan.accept?.skipDatabases ?? [],
            replicaIdentityFull: plan.accept?.replicaIdentityFull ?? [],
          })
        : undefined;
    // A platform that makes the replica itself (Aptible's db:replicate --logical) has limits of its own,
    // and pglogical takes no REPLICA IDENTITY FULL: that way out is not offered there.
    const byPlatform = plan.method === 'logical' && platform.replicateLogical !== undefined;
    problems.push(
      ...(logical?.problems ?? []).map((p) =>
        byPlatform ? p.replace(/, list it under accept\.replicaIdentityFull as "[^"]*"/, '') : p,
      ),
    );
    if (byPlatform) problems.push(...(await platformReplicaProblems(input, source)));
    if (problems.length > 0) throw preflightProblems(problems);
    warnings.push(...fidelity.warnings, ...(logical?.warnings ?? []));

    warnings.push(...(await configWarnings(platform, input, scope)));
    warnings.push(...((await platform.sessionWarnings?.(sessionHorizonMs(input))) ?? []));
    if (sourceVersion === targetVersion) warnings.push('source and target run the same major version');

    return {
      sourceVersion,
      targetVersion,
      clientVersion: tools.version,
      sourceSizeBytes,
      freeDiskBytes,
      services,
      warnings,
    };
  });
}
