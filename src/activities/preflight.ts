import { mkdir, statfs } from 'node:fs/promises';
import type { MigrationInput, PreflightResult, RecordedService } from './contract';
import { type ActivityDeps, ownerLabel, platformOf } from './deps';
import { withScope } from './scope';
import { NotFoundError, PreflightError, TargetExistsError } from '../errors';
import { assertCanDump, findClientTools } from '../pg/client-tools';
import { serverMajorVersion, totalDatabaseSize } from '../pg/inspect';

/** Everything that can be checked before any downtime, so a doomed migration fails while services still run. */
export async function preflight(deps: ActivityDeps, input: MigrationInput): Promise<PreflightResult> {
  const { plan } = input;
  const platform = platformOf(deps, input);
  return withScope(platform, async (scope) => {
    const warnings: string[] = [];
    const tools = await findClientTools();

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
    if (targetVersion < sourceVersion) {
      throw new PreflightError(
        `target.version ${targetVersion} is older than the source (${sourceVersion}); dump and restore only moves to the same or a newer major version`,
      );
    }
    const versions = await platform.listVersions();
    if (!versions.includes(plan.target.version)) {
      throw new PreflightError(
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
    if (freeDiskBytes < sourceSizeBytes) {
      throw new PreflightError(
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
