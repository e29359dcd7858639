import { createHash } from 'node:crypto';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathWithin } from '../../lib/path-component';

/** The pgshift home: explicit option, then PGSHIFT_HOME, then ~/.pgshift. */
export function resolvePgshiftHome(explicit?: string): string {
  return resolve(explicit ?? process.env.PGSHIFT_HOME ?? join(homedir(), '.pgshift'));
}

/** Where each kind of local-platform file lives under a home. */
export class HomeLayout {
  constructor(readonly home: string) {}

  get stateFile(): string {
    return join(this.home, 'local-state.json');
  }
  get locksDir(): string {
    return join(this.home, 'locks');
  }
  get secretsDir(): string {
    return join(this.home, 'secrets');
  }
  get logsDir(): string {
    return join(this.home, 'logs');
  }
  /** Cluster data when the PostgreSQL OS user can reach the home (see clusterRootFor). */
  get clustersDir(): string {
    return join(this.home, 'clusters');
  }

  // Names come from input: each path below is checked to stay inside its directory (see pathWithin).
  databasePasswordFile(environment: string, handle: string): string {
    return pathWithin(
      this.secretsDir,
      'environment or database handle',
      environment,
      `db-${handle}.password`,
    );
  }
  /** The admin password of a backed-up database as it was when the backup was taken. */
  backupPasswordFile(id: string): string {
    // "_backups" cannot be an environment's directory: handles start with a letter or digit.
    return pathWithin(this.secretsDir, 'backup id', '_backups', `backup-${id}.password`);
  }
  appConfigFile(environment: string, app: string): string {
    return pathWithin(this.secretsDir, 'environment or app handle', environment, `app-${app}.config.json`);
  }
  serviceLogFile(environment: string, app: string, service: string): string {
    return pathWithin(this.logsDir, 'environment, app or service name', environment, app, `${service}.log`);
  }
  lockDir(kind: string, ...parts: string[]): string {
    // Hashed so that any handle maps to one flat, safe directory name.
    const digest = createHash('sha256').update(parts.join('\0')).digest('hex').slice(0, 16);
    return join(this.locksDir, `${kind}-${digest}.lock`);
  }

  /** Short stable id of this home, used to keep its clusters apart from other homes' outside the home. */
  get homeId(): string {
    return createHash('sha256').update(this.home).digest('hex').slice(0, 12);
  }
}
