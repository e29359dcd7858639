// The commands of the fake `aptible`, each after its source in aptible/aptible-cli@04255732 (cited on
// each function) and /tmp/aptible-cli-contract.md. A command returns the document it renders (printed once
// at the end by main.ts), or nothing; its log lines go to stderr as it runs.
import { ThorError } from './argv';
import { type Ctx, newOperation, numberOption, runOperation, stringOption } from './context';
import { type Doc, type Json, parseDurationSeconds, shellEscape, textGroups, textLines } from './render';
import {
  ApiError,
  byId,
  databaseKey,
  ensureApp,
  ensureDatabase,
  ensureEnvironment,
  scopedEnvironments,
} from './resolve';
import {
  type BackupRecord,
  type DatabaseRecord,
  type EnvironmentRecord,
  type FakeState,
  key,
  nextId,
  readState,
  rubyTime,
  updateState,
} from './state';

export const CLI_VERSION = '0.26.6';
const REGION = 'us-east-1';
const DEFAULT_CONTAINER_SIZE_MB = 1024;
const CREDENTIAL_TYPE = 'postgresql';

// ---- shapes (lib/aptible/cli/resource_formatter.rb) ----

/** attach_account / inject_account (resource_formatter.rb:70-86,349-354). */
function environmentJson(env: EnvironmentRecord): Json {
  return { id: env.id, handle: env.handle, created_at: rubyTime(env.createdAt) };
}

/** inject_database (resource_formatter.rb:130-167): the db:list element, db:create's and backup:restore's document. */
async function databaseJson(ctx: Ctx, state: FakeState, db: DatabaseRecord): Promise<Json> {
  const url = db.status === 'provisioned' ? await ctx.local().databaseUrl(db.handle, db.environment) : null;
  return {
    id: db.id,
    handle: db.handle,
    created_at: rubyTime(db.createdAt),
    type: db.type,
    version: db.version,
    status: db.status,
    connection_url: url,
    credentials: url ? [{ type: CREDENTIAL_TYPE, connection_url: url, default: true }] : [],
    environment: environmentJson(state.environments[db.environment]),
    // The disk's attributes are the API's; the fake's are fixed (no modification in progress).
    disk_type: 'gp3',
    disk_size: db.diskSizeGb,
    disk_modification_progress: null,
    disk_modification_status: null,
    disk_provisioned_iops: 3000,
    container_size: db.containerSizeMb,
    container_profile: db.containerProfile ?? 'm',
  };
}

/** inject_backup (resource_formatter.rb:9-68); include_db for backup:orphaned. */
function backupJson(
  state: FakeState,
  b: BackupRecord,
  includeDb: boolean,
): { json: Json; description: string } {
  const op = b.operationId !== undefined ? state.operations[String(b.operationId)] : undefined;
  const origin = b.manual ? (op ? `manual, ${op.userEmail}` : 'manual, unknown') : 'automatic';
  let description = `${b.id}: ${rubyTime(b.createdAt)}, ${b.region}, ${origin}`;
  const json: Record<string, Json> = {};
  if (includeDb) {
    const deleted = state.deletedDatabases[String(b.databaseId)];
    const live = Object.values(state.databases).find((d) => d.id === b.databaseId);
    const env = state.environments[b.environment];
    json.database = {
      id: b.databaseId,
      handle: deleted?.handle ?? live?.handle ?? b.databaseHandle,
      type: 'postgresql',
      // An attribute the client does not declare: the API's raw ISO string (report 0.2, inferred).
      deleted_at: deleted?.deletedAt ?? null,
      environment: env ? environmentJson(env) : null,
    };
    description = `${description}, ${deleted?.handle ?? b.databaseHandle} deleted at ${deleted?.deletedAt ?? ''}`;
  }
  json.id = b.id;
  json.description = description;
  json.created_at = rubyTime(b.createdAt);
  json.region = b.region;
  json.size = b.size;
  json.manual = b.manual;
  if (op) {
    json.created_from_operation = {
      id: op.id,
      status: op.status,
      user_email: op.userEmail,
      created_at: rubyTime(op.createdAt),
    };
  }
  return { json, description };
}

function newestFirst(backups: BackupRecord[]): BackupRecord[] {
  return [...backups].sort((a, b) => b.createdAt.localeCompare(a.createdAt) || b.id - a.id);
}

function minCreatedAt(ctx: Ctx): number {
  const maxAge = stringOption(ctx, 'max_age') ?? '99y';
  const seconds = parseDurationSeconds(maxAge);
  if (seconds === undefined) throw new ThorError(`Invalid age: ${maxAge}`);
  return Date.now() - seconds * 1000;
}

// ---- version ----

/** lib/aptible/cli/agent.rb:108-115,365-397 */
export function version(): Doc {
  const bits = ['aptible-cli', `v${CLI_VERSION}`];
  if (process.env.APTIBLE_TOOLBELT) bits.push('toolbelt');
  if (process.env.CI === 'true') {
    const ci =
      process.env.GITHUB_ACTIONS === 'true'
        ? 'GitHub Actions'
        : process.env.CIRCLECI === 'true'
          ? 'CircleCI'
          : process.env.TRAVIS === 'true'
            ? 'Travis CI'
            : process.env.GITLAB_CI === 'true'
              ? 'GitLab CI'
              : process.env.DRONE === 'true'
                ? 'Harness'
                : 'CI';
    bits.push(`(${ci})`);
  }
  const text = bits.join(' ');
  return { json: { version: text }, text };
}

// ---- databases ----

export async function availableVersions(ctx: Ctx): Promise<string[]> {
  return (await ctx.local().listVersions()).sort((a, b) => Number(a) - Number(b));
}

/** lib/aptible/cli/subcommands/db.rb:110-129: the "API's" images are the local platform's PostgreSQL majors. */
export async function dbVersions(ctx: Ctx): Promise<Doc> {
  const versions = await availableVersions(ctx);
  const newest = versions[versions.length - 1];
  const images = versions.map((v) => ({
    type: 'postgresql',
    version: v,
    default: v === newest,
    description: `PostgreSQL ${v}`,
    docker_repo: `aptible/postgresql:${v}`,
  }));
  return { json: images, text: textGroups(images.map((i) => ({ group: i.type, value: i.version }))) };
}

/** lib/aptible/cli/subcommands/db.rb:17-108 (no RDS databases in the fake). */
export async function dbList(ctx: Ctx): Promise<Doc> {
  const state = await readState(ctx.home);
  const envs = scopedEnvironments(state, stringOption(ctx, 'environment'));
  const dbs = envs.flatMap((env) =>
    byId(Object.values(state.databases).filter((d) => d.environment === env.handle)),
  );
  const json: Json[] = [];
  for (const db of dbs) json.push(await databaseJson(ctx, state, db));
  return { json, text: textGroups(dbs.map((d) => ({ group: d.environment, value: d.handle }))) };
}

/** helpers/database.rb:353-378 validate_image_type / find_database_image. */
export function checkImage(versions: string[], type: string, version: string | undefined): void {
  if (type !== 'postgresql') {
    throw new ThorError(`No Database Image of type "${type}", valid types: postgresql`);
  }
  if (version !== undefined && !versions.includes(version)) {
    throw new ThorError(
      `No Database Image of type ${type} with version ${version}, valid versions: ${versions.join(' ')}`,
    );
  }
}

/** The API's validation of a new database's handle (assumed wording, as the name-taken message). */
export function checkNewHandle(state: FakeState, environment: string, handle: string): void {
  if (!/^[a-z0-9][a-z0-9._-]{0,63}$/.test(handle)) {
    throw new ApiError(
      'Handle may only contain lowercase letters, numbers, hyphens, underscores, and periods',
    );
  }
  if (state.databases[key(environment, handle)]) throw new ApiError('Handle has already been taken');
}

/** lib/aptible/cli/subcommands/db.rb:131-205 */
export async function dbCreate(ctx: Ctx): Promise<Doc> {
  const handle = ctx.args[0];
  const env = ensureEnvironment(await readState(ctx.home), stringOption(ctx, 'environment'));
  if (ctx.options.size !== undefined) {
    throw new ThorError(
      'You have used the "--size" option to specify a disk size.This abiguous option has been removed.' +
        'Please use the "--disk-size" option, instead.',
    );
  }
  let type = stringOption(ctx, 'type');
  let version = stringOption(ctx, 'version');
  const versions = await availableVersions(ctx);
  if (version !== undefined && type !== undefined) {
    checkImage(versions, type, version);
  } else if (version !== undefined) {
    throw new ThorError('--type is required when passing --version');
  } else {
    type ??= 'postgresql';
    checkImage(versions, type, undefined);
    version = versions[versions.length - 1]; // the default image
  }
  const diskSizeGb = numberOption(ctx, 'disk_size') ?? 10;
  const containerSizeMb = numberOption(ctx, 'container_size') ?? DEFAULT_CONTAINER_SIZE_MB;
  const { db, op } = await updateState(ctx.home, (state) => {
    checkNewHandle(state, env.handle, handle);
    const created: DatabaseRecord = {
      id: nextId(state),
      handle,
      environment: env.handle,
      type: 'postgresql',
      version: version as string,
      status: 'provisioning',
      diskSizeGb,
      containerSizeMb,
      containerProfile: stringOption(ctx, 'container_profile') ?? null,
      createdAt: new Date().toISOString(),
    };
    state.databases[databaseKey(created)] = created;
    return { db: created, op: newOperation(state, 'provision', `database ${handle}`, ctx.userEmail) };
  });
  await runOperation(ctx, op, 'Database provision', async () => {
    try {
      await ctx.local().createDatabase({
        handle,
        environment: env.handle,
        version: db.version,
        diskSizeGb,
        containerSizeMb,
        createdBy: `fake-aptible database ${db.id}`,
      });
      await loadLogical().ensureLogicalWal(ctx.local(), handle, env.handle);
    } catch (err) {
      // A database whose provision failed stays, never provisioned, until someone deprovisions it.
      await setDatabaseStatus(ctx, db, 'pending');
      throw err;
    }
  });
  await setDatabaseStatus(ctx, db, 'provisioned');
  return renderDatabase(ctx, db);
}

type LogicalModule = typeof import('./logical');

/** logical.ts, loaded by the commands that need it, as the local platform is (main.ts): it pulls in pg and execa. */
export function loadLogical(): LogicalModule {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require('./logical') as LogicalModule;
}

export async function setDatabaseStatus(ctx: Ctx, db: DatabaseRecord, status: DatabaseRecord['status']) {
  await updateState(ctx.home, (state) => {
    const current = state.databases[databaseKey(db)];
    if (current?.id === db.id) current.status = status;
  });
}

/** helpers/database.rb:380-390 render_database: text = the connection URL, JSON = the database. */
export async function renderDatabase(ctx: Ctx, db: DatabaseRecord): Promise<Doc> {
  const state = await readState(ctx.home);
  const current = state.databases[databaseKey(db)] ?? db;
  const json = await databaseJson(ctx, state, current);
  const url = (json as { connection_url: string | null }).connection_url;
  return { json, text: url ?? '' };
}

/** helpers/database.rb:321-351 find_credential: the fake's databases have one, default, `postgresql`. */
export function findCredential(db: DatabaseRecord, type: string | undefined): void {
  if (db.status !== 'provisioned') throw new ThorError(`Database ${db.handle} is not provisioned`);
  if (type !== undefined && type !== CREDENTIAL_TYPE) {
    throw new ThorError(
      `No credential with type ${type} for database, valid credential types: ${CREDENTIAL_TYPE}`,
    );
  }
}

/** lib/aptible/cli/subcommands/db.rb:477-492 */
export async function dbUrl(ctx: Ctx): Promise<Doc> {
  const state = await readState(ctx.home);
  const db = ensureDatabase(state, ctx.args[0], stringOption(ctx, 'environment'));
  findCredential(db, stringOption(ctx, 'type'));
  const url = await ctx.local().databaseUrl(db.handle, db.environment);
  return { json: { connection_url: url }, text: url };
}

/**
 * lib/aptible/cli/subcommands/db.rb:375-391. The deprovision operation keeps a final backup when the
 * environment retains them (Aptible's default backup retention policy keeps final backups; report 10):
 * the fake takes one just before removing the cluster, so it shows in backup:orphaned.
 */
export async function dbDeprovision(ctx: Ctx): Promise<undefined> {
  const state = await readState(ctx.home);
  const db = ensureDatabase(state, ctx.args[0], stringOption(ctx, 'environment'));
  // The guide's "Unlink the Databases": a source cannot go before its linked replicas (assumed wording).
  const linked = Object.values(state.databases).filter((d) => d.replicaOf === db.id);
  if (linked.length > 0) {
    throw new ApiError(
      `Database ${db.handle} has replicas (${linked.map((d) => d.handle).join(', ')}); deprovision or unlink them first`,
    );
  }
  ctx.log(`Deprovisioning ${db.handle}...`);
  const op = await updateState(ctx.home, (s) => {
    const current = s.databases[databaseKey(db)];
    if (current?.id === db.id) current.status = 'deprovisioning';
    return newOperation(s, 'deprovision', `database ${db.handle}`, ctx.userEmail);
  });
  await runOperation(ctx, op, 'Database deprovision', async () => {
    const local = ctx.local();
    const retain = state.environments[db.environment]?.retainFinalBackups ?? true;
    try {
      if (retain && (await local.getDatabase(db.handle, db.environment))) {
        const taken = await local.createBackup(db.handle, db.environment);
        await recordBackup(ctx, db, taken.id, false, undefined);
      }
      await local.deprovisionDatabase(db.handle, db.environment);
    } catch (err) {
      await setDatabaseStatus(ctx, db, db.status);
      throw err;
    }
    await updateState(ctx.home, (s) => {
      const current = s.databases[databaseKey(db)];
      if (current?.id === db.id) delete s.databases[databaseKey(db)];
      s.deletedDatabases[String(db.id)] = {
        id: db.id,
        handle: db.handle,
        type: 'postgresql',
        environment: db.environment,
        deletedAt: new Date().toISOString(),
      };
    });
  });
  return undefined;
}

async function recordBackup(
  ctx: Ctx,
  db: DatabaseRecord,
  localId: string,
  manual: boolean,
  operationId: number | undefined,
): Promise<BackupRecord> {
  return updateState(ctx.home, (state) => {
    const backup: BackupRecord = {
      id: nextId(state),
      localId,
      databaseId: db.id,
      databaseHandle: db.handle,
      environment: db.environment,
      manual,
      createdAt: new Date().toISOString(),
      size: db.diskSizeGb,
      region: REGION,
      ...(operationId !== undefined ? { operationId } : {}),
    };
    state.backups[String(backup.id)] = backup;
    return backup;
  });
}

/** lib/aptible/cli/subcommands/db.rb:393-402: logs `Backing up X...`, attaches to the operation, renders nothing. */
export async function dbBackup(ctx: Ctx): Promise<undefined> {
  const state = await readState(ctx.home);
  const db = ensureDatabase(state, ctx.args[0], stringOption(ctx, 'environment'));
  ctx.log(`Backing up ${db.handle}...`);
  const op = await updateState(ctx.home, (s) =>
    newOperation(s, 'backup', `database ${db.handle}`, ctx.userEmail),
  );
  await runOperation(ctx, op, 'Database backup', async () => {
    const taken = await ctx.local().createBackup(db.handle, db.environment);
    await recordBackup(ctx, db, taken.id, true, op.id);
  });
  return undefined;
}

// ---- backups ----

/** lib/aptible/cli/subcommands/backup.rb:74-100 */
export async function backupList(ctx: Ctx): Promise<Doc> {
  const min = minCreatedAt(ctx);
  const state = await readState(ctx.home);
  const db = ensureDatabase(state, ctx.args[0], stringOption(ctx, 'environment'));
  const items: Array<{ json: Json; description: string }> = [];
  for (const b of newestFirst(Object.values(state.backups).filter((x) => x.databaseId === db.id))) {
    if (Date.parse(b.createdAt) < min) break;
    items.push(backupJson(state, b, false));
  }
  return { json: items.map((i) => i.json), text: textLines(items.map((i) => i.description)) };
}

/** lib/aptible/cli/subcommands/backup.rb:102-131 */
export async function backupOrphaned(ctx: Ctx): Promise<Doc> {
  const min = minCreatedAt(ctx);
  const state = await readState(ctx.home);
  const envs = scopedEnvironments(state, stringOption(ctx, 'environment'));
  const items: Array<{ json: Json; description: string }> = [];
  for (const env of envs) {
    const orphaned = Object.values(state.backups).filter(
      (b) => b.environment === env.handle && state.deletedDatabases[String(b.databaseId)] !== undefined,
    );
    for (const b of newestFirst(orphaned)) {
      if (Date.parse(b.createdAt) < min) break;
      items.push(backupJson(state, b, true));
    }
  }
  return { json: items.map((i) => i.json), text: textLines(items.map((i) => i.description)) };
}

/** lib/aptible/cli/subcommands/backup.rb:133-151 */
export async function backupPurge(ctx: Ctx): Promise<undefined> {
  const id = ctx.args[0];
  const state = await readState(ctx.home);
  const backup = state.backups[id];
  if (!backup) throw new ThorError(`Backup #${id} not found`);
  const op = await updateState(ctx.home, (s) => newOperation(s, 'purge', `backup ${id}`, ctx.userEmail));
  ctx.log(`Purging backup ${id}`);
  await runOperation(ctx, op, 'Backup purge', async () => {
    await ctx.local().purgeBackup(backup.localId);
    await updateState(ctx.home, (s) => {
      delete s.backups[id];
    });
  });
  return undefined;
}

/** lib/aptible/cli/subcommands/backup.rb:11-72 */
export async function backupRestore(ctx: Ctx): Promise<Doc> {
  const id = ctx.args[0];
  const state = await readState(ctx.home);
  const backup = state.backups[id];
  if (!backup) throw new ThorError(`Backup #${id} not found`);
  const deleted = state.deletedDatabases[String(backup.databaseId)];
  const sourceHandle = deleted?.handle ?? backup.databaseHandle;
  const stamp = new Date(backup.createdAt).toISOString().slice(0, 19).replace(/[T:]/g, '-');
  const handle = stringOption(ctx, 'handle') ?? `${sourceHandle}-at-${stamp}`;
  const envOption = stringOption(ctx, 'environment');
  const destination =
    envOption !== undefined ? ensureEnvironment(state, envOption).handle : backup.environment;
  if (ctx.options.size !== undefined) {
    throw new ThorError(
      'You have used the "--size" option to specify a disk size.This abiguous option has been removed.' +
        'Please use the "--disk-size" option, instead.',
    );
  }
  const local = ctx.local();
  const info = await local.getBackup(backup.localId);
  if (!info) throw new ApiError(`Backup ${id} has no data`);
  const containerSizeMb =
    numberOption(ctx, 'container_size') ?? info.containerSizeMb ?? DEFAULT_CONTAINER_SIZE_MB;
  const diskSizeGb = numberOption(ctx, 'disk_size') ?? info.diskSizeGb ?? backup.size;
  const { db, op } = await updateState(ctx.home, (s) => {
    checkNewHandle(s, destination, handle);
    const created: DatabaseRecord = {
      id: nextId(s),
      handle,
      environment: destination,
      type: 'postgresql',
      version: String(info.version),
      status: 'provisioning',
      diskSizeGb,
      containerSizeMb,
      containerProfile: stringOption(ctx, 'container_profile') ?? null,
      createdAt: new Date().toISOString(),
    };
    s.databases[databaseKey(created)] = created;
    return { db: created, op: newOperation(s, 'restore', `backup ${id}`, ctx.userEmail) };
  });
  ctx.log(`Restoring backup into ${handle}`);
  await runOperation(ctx, op, 'Backup restore', async () => {
    try {
      await local.restoreBackup({
        backupId: backup.localId,
        handle,
        environment: destination,
        containerSizeMb,
        diskSizeGb,
        createdBy: `fake-aptible database ${db.id}`,
      });
    } catch (err) {
      await setDatabaseStatus(ctx, db, 'pending');
      throw err;
    }
  });
  await setDatabaseStatus(ctx, db, 'provisioned');
  return renderDatabase(ctx, db);
}

// ---- apps and configuration ----

/** lib/aptible/cli/subcommands/apps.rb:12-45 with inject_app/inject_service (resource_formatter.rb:98-121,177-188). */
export async function apps(ctx: Ctx): Promise<Doc> {
  const state = await readState(ctx.home);
  const envs = scopedEnvironments(state, stringOption(ctx, 'environment'));
  const list = envs.flatMap((env) =>
    byId(Object.values(state.apps).filter((a) => a.environment === env.handle)),
  );
  const json: Json[] = list.map((app) => ({
    id: app.id,
    handle: app.handle,
    created_at: rubyTime(app.createdAt),
    status: 'provisioned',
    git_remote: `git@beta.aptible.com:${app.environment}/${app.handle}.git`,
    services: byId(Object.entries(app.services).map(([name, s]) => ({ ...s, name }))).map((s) => ({
      id: s.id,
      service: s.name,
      created_at: rubyTime(s.createdAt),
      command: s.command ?? 'CMD',
      container_count: s.containerCount,
      container_size: s.containerSize,
      container_profile: s.containerProfile ?? 'm',
    })),
    environment: environmentJson(state.environments[app.environment]),
  }));
  return { json, text: textGroups(list.map((a) => ({ group: a.environment, value: a.handle }))) };
}

/** lib/aptible/cli/subcommands/apps.rb:68-108 with ensure_service (helpers/app.rb:130-148). */
export async function appsScale(ctx: Ctx): Promise<undefined> {
  const type = ctx.args[0];
  const state = await readState(ctx.home);
  const app = ensureApp(state, stringOption(ctx, 'app'), stringOption(ctx, 'environment'));
  const services = byId(Object.entries(app.services).map(([name, s]) => ({ ...s, name })));
  if (!app.services[type]) {
    const valid =
      services.length === 0 ? 'NONE (deploy the app first)' : services.map((s) => s.name).join(', ');
    throw new ThorError(
      `Service with type ${type} does not exist for app ${app.handle}. Valid types: ${valid}.`,
    );
  }
  const count = numberOption(ctx, 'container_count');
  const size = numberOption(ctx, 'container_size');
  const profile = stringOption(ctx, 'container_profile');
  if (count === undefined && size === undefined && profile === undefined) {
    throw new ThorError('Provide at least --container-count, --container-size, or --container-profile');
  }
  // The API validates (the CLI does not); these messages are the fake's.
  if (count !== undefined && (!Number.isInteger(count) || count < 0)) {
    throw new ApiError('Container count must be a whole number greater than or equal to 0');
  }
  if (size !== undefined && (!Number.isInteger(size) || size < 256)) {
    throw new ApiError('Container size must be a whole number of MB, at least 256');
  }
  const op = await updateState(ctx.home, (s) => newOperation(s, 'scale', `service ${type}`, ctx.userEmail));
  await runOperation(ctx, op, 'Service scale', async () => {
    await updateState(ctx.home, (s) => {
      const service = s.apps[key(app.environment, app.handle)]?.services[type];
      if (!service) throw new Error(`service ${type} of app ${app.handle} is gone`);
      if (count !== undefined) service.containerCount = count;
      if (size !== undefined) service.containerSize = size;
      if (profile !== undefined) service.containerProfile = profile;
    });
  });
  return undefined;
}

/** lib/aptible/cli/subcommands/config.rb:12-32 */
export async function config(ctx: Ctx): Promise<Doc> {
  const state = await readState(ctx.home);
  const app = ensureApp(state, stringOption(ctx, 'app'), stringOption(ctx, 'environment'));
  const entries = Object.entries(app.config).map(([k, v]) => ({
    key: k,
    value: v,
    shell_export: `${k}=${shellEscape(v)}`,
  }));
  return { json: entries, text: textLines(entries.map((e) => e.shell_export)) };
}

/** lib/aptible/cli/subcommands/config.rb:53-73 with extract_env (helpers/app.rb:180-199). */
export async function configSet(ctx: Ctx): Promise<undefined> {
  const state = await readState(ctx.home);
  const app = ensureApp(state, stringOption(ctx, 'app'), stringOption(ctx, 'environment'));
  const vars: Array<[string, string]> = ctx.args.map((arg) => {
    const at = arg.indexOf('=');
    const k = at < 0 ? arg : arg.slice(0, at);
    if (k.startsWith('-') || at < 0) throw new ThorError(`Invalid argument: ${k}`);
    return [k, arg.slice(at + 1)];
  });
  const op = await updateState(ctx.home, (s) =>
    newOperation(s, 'configure', `app ${app.handle}`, ctx.userEmail),
  );
  ctx.log('Updating configuration and restarting app...');
  await runOperation(ctx, op, 'App configure', async () => {
    await updateState(ctx.home, (s) => {
      const current = s.apps[key(app.environment, app.handle)];
      if (!current) throw new Error(`app ${app.handle} is gone`);
      for (const [k, v] of vars) {
        // config:rm sends KEY= (config.rb:75-91): an empty value removes the variable.
        if (v === '') delete current.config[k];
        else current.config[k] = v;
      }
    });
  });
  return undefined;
}
