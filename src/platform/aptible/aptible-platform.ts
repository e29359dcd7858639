// The platform the guide is written for: every call is the `aptible` command the guide tells a person to
// type, with machine-readable output (APTIBLE_OUTPUT_FORMAT=json). Credentials never leave this module and
// the activities that use them: URLs come from `db:url`/`db:tunnel` and are handed out as SECRET values.
import {
  BadInputError,
  NotFoundError,
  PlatformError,
  TargetExistsError,
  TransientPlatformError,
} from '../../errors';
import type {
  BackupInfo,
  CreateDatabaseSpec,
  DatabaseConnection,
  DatabaseInfo,
  OrphanedBackup,
  Platform,
  RestoreBackupSpec,
  ServiceInfo,
} from '../platform';
import { AptibleCli, type AptibleCliOptions } from './cli';
import {
  type AptibleDatabase,
  parseApps,
  parseBackups,
  parseConfig,
  parseDatabase,
  parseDatabaseUrl,
  parseDatabases,
  parseOrphanedBackups,
  parseVersions,
} from './parse';
import { openTunnel } from './tunnel';
import { tokenExpiry } from './token';
import { formatDuration } from '../../lib/duration';

const GB = 1024 ** 3;

export interface AptiblePlatformOptions extends AptibleCliOptions {
  /** How long a tunnel may take to come up (default 2 min). */
  tunnelStartTimeoutMs?: number;
}

export class AptiblePlatform implements Platform {
  readonly name = 'aptible';
  readonly adminRole = 'aptible';
  // The guide: "These errors are expected because Aptible creates these resources on all PostgreSQL Databases".
  readonly expectedRestoreErrors = [
    'role "aptible" already exists',
    'role "postgres" already exists',
    'database "db" already exists',
  ] as const;
  readonly cli: AptibleCli;
  private readonly tunnelStartTimeoutMs?: number;

  constructor(options: AptiblePlatformOptions = {}) {
    this.cli = new AptibleCli(options);
    this.tunnelStartTimeoutMs = options.tunnelStartTimeoutMs;
  }

  // ---- databases ----

  async listVersions(): Promise<string[]> {
    return parseVersions(await this.cli.run(['db:versions']));
  }

  /** There is no `db:show`: `db:list --environment` and a lookup by handle (connection URLs dropped). */
  async getDatabase(handle: string, environment: string): Promise<DatabaseInfo | undefined> {
    const found = await this.findDatabase(handle, environment);
    return found && toInfo(found);
  }

  async createDatabase(spec: CreateDatabaseSpec): Promise<DatabaseInfo> {
    // The guide's command, flag for flag. Aptible stores no label, so spec.createdBy is not sent; the
    // activities decide ownership (see activities/deps.ts).
    const stdout = await this.cli.run([
      'db:create',
      spec.handle,
      '--type',
      'postgresql',
      '--version',
      spec.version,
      '--environment',
      spec.environment,
      '--disk-size',
      String(spec.diskSizeGb),
      '--container-size',
      String(spec.containerSizeMb),
    ]);
    return toInfo(parseDatabase(stdout, 'db:create'));
  }

  /**
   * The guide's `aptible db:replicate SOURCE REPLICA --logical --version V`, with the plan's sizes: a new
   * database of version V holding the source's roles and schema, its data syncing in the background with
   * pglogical (see /work/notes/aptible-logical.md). As with db:create, Aptible records no creator and
   * refuses a handle that is taken, so a retry looks the replica up first and keeps it when it is its own
   * (activities/deps.ts isOwnedBy), as createTarget does. `--environment` only finds the source: Aptible
   * puts the replica in the source's environment, so source and replica share `spec.environment`.
   */
  async replicateLogical(spec: CreateDatabaseSpec & { sourceHandle: string }): Promise<DatabaseInfo> {
    if (spec.handle === spec.sourceHandle) {
      throw new BadInputError(
        `the replica "${spec.handle}" cannot have its source's handle; choose another target.handle`,
      );
    }
    const args = [
      'db:replicate',
      spec.sourceHandle,
      spec.handle,
      '--logical',
      '--version',
      spec.version,
      '--environment',
      spec.environment,
      '--container-size',
      String(spec.containerSizeMb),
      '--disk-size',
      String(spec.diskSizeGb),
    ];
    try {
      return toInfo(parseDatabase(await this.cli.run(args), 'db:replicate'));
    } catch (err) {
      if (err instanceof TargetExistsError) {
        throw new TargetExistsError(
          `a database "${spec.handle}" already exists in environment "${spec.environment}"; remove it or rename it`,
        );
      }
      // A failed replicate_logical operation leaves a half-made replica and pglogical objects on the
      // source (the guide's "Create the replica"): another db:replicate cannot succeed until both are gone.
      const op = err instanceof TransientPlatformError && /Operation #(\d+) failed/.exec(err.message);
      if (op) {
        throw new PlatformError(
          `\`aptible db:replicate --logical\` failed (see \`aptible operation:logs ${op[1]}\`; usual causes: a ` +
            'table without a primary key, a pglogical node already on the source). Its replica ' +
            `"${spec.handle}" must be deprovisioned and the source cleaned of the pglogical objects it made ` +
            "(the Cleanup of Aptible's guide) before another attempt",
        );
      }
      throw err;
    }
  }

  /** Idempotent: a database that is gone (or never was) counts as deprovisioned. */
  async deprovisionDatabase(handle: string, environment: string): Promise<void> {
    try {
      await this.cli.run(['db:deprovision', handle, '--environment', environment]);
    } catch (err) {
      // db:deprovision has no "already gone" success (subcommands/db.rb): that is its lookup failing.
      if (err instanceof NotFoundError && /Could not find database/.test(err.message)) return;
      throw err;
    }
  }

  /**
   * A tunnel for the calling activity. One that does not come up is tried once more at once: the CLI picks
   * its port by binding and releasing it, so two tunnels opened together (verify) can race for one port.
   */
  async connect(handle: string, environment: string): Promise<DatabaseConnection> {
    const open = () =>
      openTunnel(this.cli, handle, environment, { startTimeoutMs: this.tunnelStartTimeoutMs });
    try {
      return await open();
    } catch (err) {
      if (!(err instanceof TransientPlatformError) || !/did not come up/.test(err.message)) throw err;
      return open();
    }
  }

  /** `aptible db:url`: the URL apps use (never a tunnel's localhost URL). SECRET. */
  async databaseUrl(handle: string, environment: string): Promise<string> {
    return parseDatabaseUrl(await this.cli.run(['db:url', handle, '--environment', environment]));
  }

  // ---- apps and services ----

  /** `APTIBLE_OUTPUT_FORMAT=json aptible apps`, as the guide suggests for the current container counts. */
  async listServices(environment: string): Promise<ServiceInfo[]> {
    const services = parseApps(await this.cli.run(['apps', '--environment', environment]));
    return services
      .filter((s) => s.environment === environment)
      .map((s) => ({ app: s.app, service: s.service, containerCount: s.containerCount }));
  }

  async scaleService(
    app: string,
    service: string,
    containerCount: number,
    environment: string,
  ): Promise<void> {
    await this.cli.run([
      'apps:scale',
      '--app',
      app,
      '--environment',
      environment,
      service,
      '--container-count',
      String(containerCount),
    ]);
  }

  /** `aptible config:set --app APP VAR=URL`: the value is on the CLI's command line, as in the guide. */
  async setConfig(app: string, vars: Record<string, string>, environment: string): Promise<void> {
    const pairs = Object.entries(vars).map(([k, v]) => `${k}=${v}`);
    await this.cli.run(['config:set', '--app', app, '--environment', environment, ...pairs], {
      secrets: Object.values(vars),
    });
  }

  async getConfig(app: string, environment: string): Promise<Record<string, string>> {
    return parseConfig(await this.cli.run(['config', '--app', app, '--environment', environment]));
  }

  // ---- backups ----

  async listBackups(handle: string, environment: string): Promise<BackupInfo[]> {
    const backups = parseBackups(await this.cli.run(['backup:list', handle, '--environment', environment]));
    // A cross-region copy is newer than its original but holds the same data, far from the database.
    return backups
      .filter((b) => !b.copy)
      .map((b) => ({
        id: b.id,
        databaseHandle: handle,
        environment,
        createdAt: b.createdAt,
        sizeBytes: b.sizeGb !== undefined ? b.sizeGb * GB : undefined,
      }))
      .sort((a, b) => b.createdAt.localeCompare(a.createdAt));
  }

  /** The guide's `aptible backup:restore ID --handle H --container-size N`, into the given environment. */
  async restoreBackup(spec: RestoreBackupSpec): Promise<DatabaseInfo> {
    const args = ['backup:restore', spec.backupId, '--handle', spec.handle];
    if (spec.containerSizeMb !== undefined) args.push('--container-size', String(spec.containerSizeMb));
    args.push('--environment', spec.environment);
    try {
      return toInfo(parseDatabase(await this.cli.run(args), 'backup:restore'));
    } catch (err) {
      if (err instanceof TargetExistsError) {
        throw new TargetExistsError(
          `a database "${spec.handle}" already exists in environment "${spec.environment}"; remove it or rename it`,
        );
      }
      throw err;
    }
  }

  async listOrphanedBackups(environment: string): Promise<OrphanedBackup[]> {
    const backups = parseOrphanedBackups(
      await this.cli.run(['backup:orphaned', '--environment', environment]),
    );
    return backups.map((b) => ({
      id: b.id,
      databaseHandle: b.databaseHandle,
      environment: b.environment,
      createdAt: b.createdAt,
    }));
  }

  /** Idempotent: a backup already purged counts as purged. */
  async purgeBackup(id: string): Promise<void> {
    try {
      await this.cli.run(['backup:purge', id]);
    } catch (err) {
      if (err instanceof NotFoundError && /Backup #\d+ not found/.test(err.message)) return;
      throw err;
    }
  }

  // ---- the login ----

  async sessionWarnings(horizonMs: number): Promise<string[]> {
    const expiry = await tokenExpiry(this.cli.env);
    if (!expiry || expiry.getTime() > Date.now() + horizonMs) return [];
    return [
      `the aptible login of this worker ends at ${expiry.toISOString()}, before this migration may be done ` +
        `(within ${formatDuration(horizonMs)}, the cutover wait included); log in again with a longer ` +
        '`aptible login --lifetime`, or give the workers a longer-lived APTIBLE_ACCESS_TOKEN',
    ];
  }

  // ---- internals ----

  private async findDatabase(handle: string, environment: string): Promise<AptibleDatabase | undefined> {
    const all = parseDatabases(await this.cli.run(['db:list', '--environment', environment]));
    return all.find(
      (d) => d.handle === handle && d.environment === environment && d.status !== 'deprovisioned',
    );
  }
}

function toInfo(d: AptibleDatabase): DatabaseInfo {
  return {
    handle: d.handle,
    environment: d.environment,
    version: Number.parseInt(d.version ?? '', 10) || 0,
    containerSizeMb: d.containerSizeMb,
    createdAt: d.createdAt,
  };
}

export function createAptiblePlatform(options: AptiblePlatformOptions = {}): AptiblePlatform {
  return new AptiblePlatform(options);
}
