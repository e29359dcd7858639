import { randomUUID } from 'node:crypto';
import { Command, InvalidArgumentError } from 'commander';
import { BadInputError } from '../errors';
import { redact } from '../lib/redact';
import {
  createLocalPlatform,
  MAX_CONTAINERS_PER_SERVICE,
  type LocalAppInfo,
  type LocalBackupInfo,
  type LocalDatabaseInfo,
  type LocalPlatform,
} from '../platform/local';
import { handleProblem, serviceNameProblem } from '../platform/local/names';
import { exitCodeFor } from './exit';

// `pgshift local ...`: the local platform driven with the Aptible CLI's verbs and options, so the guide's
// commands (and scripts written for them) work against databases and apps on this machine.

const DEFAULT_ENVIRONMENT = 'local';

interface EnvOpts {
  environment: string;
}
interface JsonOpts {
  json?: boolean;
}

export function localCommand(): Command {
  const local = new Command('local')
    .description(
      'databases (PostgreSQL clusters) and apps (local processes) on this machine, with Aptible CLI verbs',
    )
    .option('--home <dir>', 'pgshift home holding the state (default: $PGSHIFT_HOME or ~/.pgshift)');
  const platform = (): LocalPlatform => createLocalPlatform({ home: local.opts<{ home?: string }>().home });
  const sub = (name: string, description: string) =>
    local.command(name).description(description).showHelpAfterError().exitOverride(usageError);
  const withEnv = (cmd: Command) =>
    cmd.option(
      '--environment <handle>',
      'environment the resource belongs to',
      handleArg,
      DEFAULT_ENVIRONMENT,
    );
  const envFilter = (cmd: Command) =>
    cmd.option('--environment <handle>', 'only this environment', handleArg);

  local.showHelpAfterError().exitOverride(usageError);

  sub('db:versions', 'PostgreSQL versions the local platform can create').action(() =>
    run(async () => {
      for (const v of await platform().listVersions()) out(`postgresql ${v}`);
    }),
  );

  withEnv(
    sub('db:create', 'create a database: a PostgreSQL cluster of its own').argument(
      '<handle>',
      '',
      handleArg,
    ),
  )
    .requiredOption('--version <version>', 'PostgreSQL major version (see db:versions)', majorVersion)
    .option('--disk-size <gb>', 'recorded only: local databases use the disk they need', positiveInt, 10)
    .option('--container-size <mb>', 'recorded only', positiveInt, 1024)
    .option(
      '--created-by <id>',
      'creator label: creating again with the same label returns the existing database',
    )
    .action(
      (
        handle: string,
        opts: EnvOpts & { version: string; diskSize: number; containerSize: number; createdBy?: string },
      ) =>
        run(async () => {
          const local = platform();
          const versions = await local.listVersions();
          if (!versions.includes(opts.version)) {
            throw new BadInputError(
              `option '--version ${opts.version}': PostgreSQL ${opts.version} is not available on the local platform ` +
                `(available: ${versions.join(', ') || 'none'}; see db:versions)`,
            );
          }
          info(
            `Provisioning PostgreSQL ${opts.version} database ${handle} in environment ${opts.environment}...`,
          );
          const db = await local.createDatabase({
            handle,
            environment: opts.environment,
            version: opts.version,
            diskSizeGb: opts.diskSize,
            containerSizeMb: opts.containerSize,
            // Like Aptible, creating a taken handle fails unless the caller names itself as the creator.
            createdBy: opts.createdBy ?? `cli:${randomUUID()}`,
          });
          printObject(databaseJson(db));
        }),
    );

  envFilter(sub('db:list', 'list databases'))
    .option('--json', 'JSON output (also APTIBLE_OUTPUT_FORMAT=json)')
    .action((opts: Partial<EnvOpts> & JsonOpts) =>
      run(async () => {
        const dbs = await platform().listDatabases(opts.environment);
        if (wantsJson(opts)) return printJson(dbs.map(databaseJson));
        printGrouped(
          dbs,
          (db) => db.environment,
          (db) => [db.handle],
        );
      }),
    );

  withEnv(
    sub('db:url', "print a database's URL (it holds the password)").argument('<handle>', '', handleArg),
  ).action((handle: string, opts: EnvOpts) =>
    run(async () => {
      out(await platform().databaseUrl(handle, opts.environment));
    }),
  );

  withEnv(
    sub('db:deprovision', 'stop a database and delete its data').argument('<handle>', '', handleArg),
  ).action((handle: string, opts: EnvOpts) =>
    run(async () => {
      info(`Deprovisioning ${handle}...`);
      if (!(await platform().deprovisionDatabaseIfAny(handle, opts.environment))) {
        warn(`database ${handle} not found in environment ${opts.environment}: nothing to deprovision`);
      }
    }),
  );

  withEnv(
    sub('db:backup', 'take a backup of a database: a physical base backup').argument(
      '<handle>',
      '',
      handleArg,
    ),
  )
    .alias('backup:create')
    .action((handle: string, opts: EnvOpts) =>
      run(async () => {
        info(`Backing up ${handle}...`);
        printObject(backupJson(await platform().createBackup(handle, opts.environment)));
      }),
    );

  withEnv(sub('backup:list', "list a database's backups, newest first").argument('<handle>', '', handleArg))
    .option('--json', 'JSON output (also APTIBLE_OUTPUT_FORMAT=json)')
    .action((handle: string, opts: EnvOpts & JsonOpts) =>
      run(async () => {
        const backups = await platform().listBackups(handle, opts.environment);
        if (wantsJson(opts)) return printJson(backups.map((b) => backupJson(b)));
        for (const b of backups) out(backupDescription(b));
      }),
    );

  sub('backup:restore', 'restore a backup into a new database')
    .argument('<backup_id>', '', backupIdArg)
    .option(
      '--handle <handle>',
      'a name for the new database (default: <database>-at-<time of the backup>)',
      handleArg,
    )
    .option(
      '--environment <handle>',
      "environment to restore to (default: the backed-up database's)",
      handleArg,
    )
    .option('--container-size <mb>', "recorded only (default: the backed-up database's)", positiveInt)
    .option('--disk-size <gb>', "recorded only (default: the backed-up database's)", positiveInt)
    .option(
      '--created-by <id>',
      'creator label: restoring again with the same label returns the database already restored',
    )
    .action(
      (
        id: string,
        opts: {
          handle?: string;
          environment?: string;
          containerSize?: number;
          diskSize?: number;
          createdBy?: string;
        },
      ) =>
        run(async () => {
          const local = platform();
          const backup = await local.getBackup(id);
          const handle = opts.handle ?? `${backup.databaseHandle}-at-${timestampSuffix(backup.createdAt)}`;
          info(`Restoring backup into ${handle}`);
          const db = await local.restoreBackup({
            backupId: id,
            handle,
            environment: opts.environment ?? backup.environment,
            containerSizeMb: opts.containerSize,
            diskSizeGb: opts.diskSize,
            createdBy: opts.createdBy ?? `cli:${randomUUID()}`,
          });
          printObject(databaseJson(db));
        }),
    );

  envFilter(sub('backup:orphaned', 'list backups of deprovisioned databases, newest first'))
    .option('--json', 'JSON output (also APTIBLE_OUTPUT_FORMAT=json)')
    .action((opts: Partial<EnvOpts> & JsonOpts) =>
      run(async () => {
        const backups = await platform().listOrphanedBackups(opts.environment);
        if (wantsJson(opts)) return printJson(backups.map((b) => backupJson(b, true)));
        for (const b of backups) out(backupDescription(b, true));
      }),
    );

  sub('backup:purge', 'permanently delete a backup (succeeds when it is already gone)')
    .argument('<backup_id>', '', backupIdArg)
    .action((id: string) =>
      run(async () => {
        info(`Purging backup ${id}`);
        if (!(await platform().purgeBackupIfAny(id))) warn(`backup ${id} not found: nothing to purge`);
      }),
    );

  withEnv(
    sub('apps:create', 'create an app whose services are shell commands').argument('<app>', '', handleArg),
  )
    .requiredOption('--service <NAME=COMMAND>', 'a service and its command (repeatable)', collectService, {})
    .option('--cwd <dir>', "working directory of the app's processes (default: the current directory)")
    .action((app: string, opts: EnvOpts & { service: Record<string, string>; cwd?: string }) =>
      run(async () => {
        await platform().createApp(app, opts.service, opts.environment, { cwd: opts.cwd });
        info(`App ${app} created!`);
      }),
    );

  envFilter(sub('apps', 'list apps with their services and container counts'))
    .option('--json', 'JSON output (also APTIBLE_OUTPUT_FORMAT=json)')
    .action((opts: Partial<EnvOpts> & JsonOpts) =>
      run(async () => {
        const apps = await platform().listApps(opts.environment);
        if (wantsJson(opts)) return printJson(apps.map(appJson));
        printGrouped(apps, (a) => a.environment, appLines, true);
      }),
    );

  withEnv(sub('apps:scale', 'scale a service to a number of processes').argument('<service>', '', serviceArg))
    .requiredOption('--app <app>', 'the app', handleArg)
    .requiredOption(
      '--container-count <n>',
      `processes to run, at most ${MAX_CONTAINERS_PER_SERVICE} per service locally`,
      containerCount,
    )
    .action((service: string, opts: EnvOpts & { app: string; containerCount: number }) =>
      run(async () => {
        info(`Scaling ${opts.app} ${service} to ${opts.containerCount} container(s)...`);
        await platform().scaleService(opts.app, service, opts.containerCount, opts.environment);
      }),
    );

  withEnv(sub('apps:deprovision', "stop an app's processes and delete it"))
    .requiredOption('--app <app>', 'the app', handleArg)
    .action((opts: EnvOpts & { app: string }) =>
      run(async () => {
        info(`Deprovisioning ${opts.app}...`);
        if (!(await platform().deprovisionApp(opts.app, opts.environment))) {
          warn(`app ${opts.app} not found in environment ${opts.environment}: nothing to deprovision`);
        }
      }),
    );

  withEnv(sub('config', "print an app's configuration (values may be secrets)"))
    .requiredOption('--app <app>', 'the app', handleArg)
    .option('--json', 'JSON output (also APTIBLE_OUTPUT_FORMAT=json)')
    .action((opts: EnvOpts & JsonOpts & { app: string }) =>
      run(async () => {
        const config = await platform().getConfig(opts.app, opts.environment);
        if (wantsJson(opts)) return printJson(config);
        for (const [k, v] of Object.entries(config).sort(([a], [b]) => a.localeCompare(b))) out(`${k}=${v}`);
      }),
    );

  withEnv(
    sub('config:set', "merge variables into an app's configuration and restart it").argument(
      '<KEY=VALUE...>',
    ),
  )
    .requiredOption('--app <app>', 'the app', handleArg)
    .action((pairs: string[], opts: EnvOpts & { app: string }) =>
      run(async () => {
        const vars = Object.fromEntries(pairs.map(parsePair));
        info(`Updating configuration and restarting ${opts.app}...`);
        await platform().setConfig(opts.app, vars, opts.environment);
      }),
    );

  sub('up', 'start every database and bring every service to its recorded container count').action(() =>
    run(() => platform().startAll()),
  );

  sub('down', 'stop every database and process of this home (container counts stay recorded)').action(() =>
    run(() => platform().stopAll()),
  );

  sub('destroy', 'stop everything of this home and delete its databases, backups, apps and state')
    .option('--yes', 'confirm: this deletes every database of the home, irreversibly')
    .action((opts: { yes?: boolean }) =>
      run(async () => {
        if (!opts.yes) {
          throw new BadInputError(
            `destroy deletes every database and backup under ${platform().home}; run it again with --yes to confirm`,
          );
        }
        const local = platform();
        const { kept } = await local.destroy();
        info(`Destroyed every database, backup and app of ${local.home}`);
        if (kept.length > 0) {
          info(
            `Kept in ${local.home}, as they are not the local platform's: ${kept.map(describeKept).join(', ')}`,
          );
        }
      }),
    );

  return local;
}

// ---- output, shaped like the Aptible CLI's text and JSON renderers ----

function databaseJson(db: LocalDatabaseInfo) {
  return {
    handle: db.handle,
    type: 'postgresql',
    version: String(db.version),
    status: db.running ? 'running' : 'stopped',
    created_at: db.createdAt,
    created_by: db.createdBy,
    host: '127.0.0.1',
    port: db.port,
    container_size: db.containerSizeMb,
    environment: { handle: db.environment },
  };
}

function backupJson(backup: LocalBackupInfo, orphaned = false) {
  return {
    id: Number(backup.id),
    description: backupDescription(backup, orphaned),
    created_at: backup.createdAt,
    region: 'local',
    // GB like Aptible's (rounded up); size_bytes is exact.
    size: backup.sizeBytes === undefined ? undefined : Math.max(1, Math.ceil(backup.sizeBytes / 2 ** 30)),
    size_bytes: backup.sizeBytes,
    manual: true,
    version: String(backup.version),
    container_size: backup.containerSizeMb,
    disk_size: backup.diskSizeGb,
    database: { handle: backup.databaseHandle, deleted_at: backup.databaseDeletedAt },
    environment: { handle: backup.environment },
  };
}

/** Aptible's one-line description: "ID: CREATED_AT, REGION, ORIGIN[, HANDLE deleted at TIME]". */
function backupDescription(backup: LocalBackupInfo, orphaned = false): string {
  const line = `${backup.id}: ${backup.createdAt}, local, manual`;
  return orphaned
    ? `${line}, ${backup.databaseHandle} deleted at ${backup.databaseDeletedAt ?? 'unknown'}`
    : line;
}

/** 2024-05-01T12:34:56.789Z → 2024-05-01-12-34-56, as Aptible names a restored database by default. */
function timestampSuffix(iso: string): string {
  return iso.slice(0, 19).replace(/[T:]/g, '-');
}

function appJson(app: LocalAppInfo) {
  return {
    handle: app.app,
    created_at: app.createdAt,
    status: 'provisioned',
    cwd: app.cwd,
    services: app.services.map((s) => ({
      service: s.service,
      command: s.command,
      container_count: s.containerCount,
      running_count: s.runningCount,
      pids: s.pids,
    })),
    environment: { handle: app.environment },
  };
}

function appLines(app: LocalAppInfo): string[] {
  const lines = [`Handle: ${app.app}`, `Created At: ${app.createdAt}`, 'Status: provisioned', 'Services:'];
  app.services.forEach((s, i) => {
    if (i > 0) lines.push('');
    lines.push(
      `  Service: ${s.service}`,
      `  Command: ${s.command}`,
      `  Container Count: ${s.containerCount}`,
      `  Running: ${s.runningCount}${s.pids.length ? ` (pids ${s.pids.join(', ')})` : ''}`,
    );
  });
  return lines;
}

function printObject(obj: Record<string, unknown>): void {
  if (wantsJson({})) return printJson(obj);
  for (const [k, v] of Object.entries(obj)) {
    const value = v && typeof v === 'object' ? (v as { handle?: string }).handle : v;
    out(`${titleize(k)}: ${value ?? ''}`);
  }
}

/** `=== environment` headers, then one block per item (blank line between blocks when they are multi-line). */
function printGrouped<T>(
  items: T[],
  group: (t: T) => string,
  lines: (t: T) => string[],
  spaced = false,
): void {
  const groups = new Map<string, T[]>();
  for (const item of items) groups.set(group(item), [...(groups.get(group(item)) ?? []), item]);
  [...groups.keys()].sort().forEach((name, gi) => {
    if (gi > 0) out('');
    out(`=== ${name}`);
    (groups.get(name) ?? []).forEach((item, i) => {
      if (spaced && i > 0) out('');
      for (const line of lines(item)) out(line);
    });
  });
}

function printJson(value: unknown): void {
  out(JSON.stringify(value, null, 2));
}

function wantsJson(opts: JsonOpts): boolean {
  return opts.json === true || process.env.APTIBLE_OUTPUT_FORMAT === 'json';
}

function titleize(key: string): string {
  return key
    .split('_')
    .map((w) => w.charAt(0).toUpperCase() + w.slice(1))
    .join(' ');
}

function out(line: string): void {
  process.stdout.write(line + '\n');
}

/** Progress goes to stderr, as the Aptible CLI's logger does, so stdout stays parseable. */
function info(line: string): void {
  process.stderr.write(`INFO -- : ${line}\n`);
}

function warn(line: string): void {
  process.stderr.write(`WARN -- : ${line}\n`);
}

/** What a file `local destroy` leaves in the home is for, when pgshift knows it. */
function describeKept(name: string): string {
  if (name === 'temporal.db' || name.startsWith('temporal.db-')) return `${name} (the dev server's history)`;
  if (name === 'temporal.log') return `${name} (the dev server's log)`;
  if (name === 'temporal.pid') return `${name} (the dev server's process id)`;
  if (name === 'work') return `${name} (migration dumps of workers using this home)`;
  return name;
}

// ---- arguments and exit codes ----

async function run(body: () => Promise<void>): Promise<void> {
  try {
    await body();
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    process.stderr.write(`pgshift local: ${redact(message).replace(/\s*\n\s*/g, ' ')}\n`);
    process.exitCode = exitCodeFor(err);
  }
}

function usageError(err: { exitCode: number }): never {
  // Commander's own usage errors are bad input: exit code 2 (help and version exit 0).
  process.exit(err.exitCode === 0 ? 0 : 2);
}

function parsePair(pair: string): [string, string] {
  const eq = pair.indexOf('=');
  if (eq <= 0) throw new BadInputError(`"${pair}" is not KEY=VALUE`);
  return [pair.slice(0, eq), pair.slice(eq + 1)];
}

function collectService(spec: string, previous: Record<string, string>): Record<string, string> {
  const eq = spec.indexOf('=');
  if (eq <= 0) throw new InvalidArgumentError('expected NAME=COMMAND, e.g. --service web="node server.js"');
  return { ...previous, [spec.slice(0, eq)]: spec.slice(eq + 1) };
}

function handleArg(value: string): string {
  const problem = handleProblem(value);
  if (problem) throw new InvalidArgumentError(`It ${problem}.`);
  return value;
}

function serviceArg(value: string): string {
  const problem = serviceNameProblem(value);
  if (problem) throw new InvalidArgumentError(`It ${problem}.`);
  return value;
}

function backupIdArg(value: string): string {
  if (!/^[1-9]\d{0,15}$/.test(value))
    throw new InvalidArgumentError('A backup id is a number (see backup:list).');
  return value;
}

function majorVersion(value: string): string {
  if (!/^\d{1,3}$/.test(value))
    throw new InvalidArgumentError('It must be a PostgreSQL major version such as 17.');
  return value;
}

function containerCount(value: string): number {
  const n = nonNegativeInt(value);
  if (n > MAX_CONTAINERS_PER_SERVICE) {
    throw new InvalidArgumentError(
      `The local platform runs at most ${MAX_CONTAINERS_PER_SERVICE} processes per service.`,
    );
  }
  return n;
}

function nonNegativeInt(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(n))
    throw new InvalidArgumentError('must be a whole number ≥ 0');
  return n;
}

function positiveInt(value: string): number {
  const n = nonNegativeInt(value);
  if (n === 0) throw new InvalidArgumentError('must be at least 1');
  return n;
}

if (require.main === module) {
  localCommand()
    .parseAsync(process.argv)
    .catch((err: Error) => {
      process.stderr.write(`pgshift local: ${redact(err.message)}\n`);
      process.exitCode = 1;
    });
}
