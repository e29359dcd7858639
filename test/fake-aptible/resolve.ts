// How the CLI finds environments, databases and apps, with its exact error texts.
import { ThorError } from './argv';
import { type AppRecord, type DatabaseRecord, type EnvironmentRecord, type FakeState, key } from './state';

/** An API 4xx that bin/aptible turns into `An error occurred: <message>` (bin/aptible, 0.3 of the report). */
export class ApiError extends Error {}

/** A 401 expired_token/invalid_token (bin/aptible). */
export const AUTH_ERROR = 'API authentication error: please run aptible login';

export function byId<T extends { id: number }>(items: T[]): T[] {
  return [...items].sort((a, b) => a.id - b.id);
}

/** helpers/environment.rb:17-31 scoped_environments (apps, db:list, backup:orphaned). */
export function scopedEnvironments(state: FakeState, environment: string | undefined): EnvironmentRecord[] {
  if (environment !== undefined) {
    const found = state.environments[environment];
    if (!found) throw new ThorError('Specified account does not exist');
    return [found];
  }
  return byId(Object.values(state.environments));
}

/** helpers/environment.rb:33-41,63-80 ensure_environment (db:create, backup:restore --environment). */
export function ensureEnvironment(state: FakeState, environment: string | undefined): EnvironmentRecord {
  if (environment !== undefined) {
    const found = state.environments[environment];
    if (!found) throw new ThorError(`Could not find environment ${environment}`);
    return found;
  }
  const all = Object.values(state.environments);
  if (all.length === 0) throw new ThorError('No environments. Go to https://app.aptible.com/ to proceed');
  if (all.length > 1) {
    throw new ThorError('Multiple environments available, please specify with --environment or --env');
  }
  return all[0];
}

/** helpers/database.rb:28-43 ensure_database + 137-151 database_from_handle (`/find/database`). */
export function ensureDatabase(
  state: FakeState,
  handle: string,
  environment: string | undefined,
): DatabaseRecord {
  if (environment !== undefined && !state.environments[environment]) {
    throw new ThorError(`Could not find environment ${environment}`);
  }
  const found = Object.values(state.databases).filter(
    (d) => d.handle === handle && (environment === undefined || d.environment === environment),
  );
  if (found.length > 1) throw new ThorError('Multiple databases exist, please specify with --environment');
  if (found.length === 0) throw new ThorError(`Could not find database ${handle}`);
  return found[0];
}

/** helpers/app.rb:94-128 ensure_app + 164-178 app_from_handle (`/find/app`). */
export function ensureApp(
  state: FakeState,
  app: string | undefined,
  environment: string | undefined,
): AppRecord {
  // The git-remote strategy (helpers/app.rb:56-92) finds nothing: the fake assumes no `aptible` remote.
  if (app === undefined) {
    throw new ThorError('Could not find app in current working directory, please specify with --app');
  }
  const explain = '(options provided via CLI arguments)';
  if (environment !== undefined && !state.environments[environment]) {
    throw new ThorError(`Could not find environment ${environment} ${explain}`);
  }
  const found = Object.values(state.apps).filter(
    (a) => a.handle === app && (environment === undefined || a.environment === environment),
  );
  if (found.length > 1) {
    throw new ThorError(`Multiple apps named ${app} exist, please specify with --environment`);
  }
  if (found.length === 0) {
    const where = environment !== undefined ? `in environment ${environment}` : 'in any environment';
    throw new ThorError(`Could not find app ${app} ${where} ${explain}`);
  }
  return found[0];
}

export function databaseKey(db: DatabaseRecord): string {
  return key(db.environment, db.handle);
}
