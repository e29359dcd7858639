import { randomBytes } from 'node:crypto';
import { rm, stat } from 'node:fs/promises';
import { BadInputError, NotFoundError, TargetExistsError } from '../../errors';
import type { ServiceInfo } from '../platform';
import { baseEnv, findTaggedContainer, isContainerAlive, startContainer, stopContainer } from './containers';
import { ensureDir, readJsonIfExists, writeFileAtomic } from './files';
import type { LocalHome } from './local-home';
import { withLock } from './lock';
import { checkEnvVarName, checkHandle, checkServiceName } from './names';
import { type AppRecord, type ContainerRecord, type StartingContainer, recordKey } from './state';

// Local apps: services that are shell commands, each container a detached process group on this machine.

/** Processes one service may run locally: each is a real process on this machine. */
export const MAX_CONTAINERS_PER_SERVICE = 32;

export interface LocalServiceInfo extends ServiceInfo {
  command: string;
  /** Processes alive right now (containerCount is the desired count). */
  runningCount: number;
  pids: number[];
}

export interface LocalAppInfo {
  app: string;
  environment: string;
  cwd: string;
  createdAt: string;
  services: LocalServiceInfo[];
}

export interface CreateAppOptions {
  /** Working directory of the app's processes; defaults to the current directory. */
  cwd?: string;
}

export class LocalApps {
  constructor(private readonly ctx: LocalHome) {}

  async createApp(
    app: string,
    services: Record<string, string>,
    environment: string,
    options: CreateAppOptions = {},
  ): Promise<LocalAppInfo> {
    checkHandle('app handle', app);
    checkHandle('environment', environment);
    const names = Object.keys(services);
    if (names.length === 0) throw new BadInputError(`app "${app}" needs at least one service (NAME=COMMAND)`);
    for (const name of names) {
      checkServiceName(name);
      if (!services[name]?.trim())
        throw new BadInputError(`service "${name}" of app "${app}" has an empty command`);
    }
    const cwd = options.cwd ?? process.cwd();
    const isDir = await stat(cwd).then(
      (s) => s.isDirectory(),
      () => false,
    );
    if (!isDir) throw new BadInputError(`working directory ${cwd} of app "${app}" is not a directory`);
    const key = recordKey(environment, app);
    await withLock(this.ctx.layout.lockDir('app', environment, app), async () => {
      const existing = (await this.ctx.store.read()).apps[key];
      if (existing) {
        const same =
          Object.keys(existing.services).sort().join('\0') === names.sort().join('\0') &&
          names.every((n) => existing.services[n].command === services[n]);
        if (same) return;
        throw new TargetExistsError(
          `app "${app}" already exists in environment "${environment}" with other services; ` +
            `remove it first: pgshift local apps:deprovision --app ${app} --environment ${environment}`,
        );
      }
      await this.writeConfig(environment, app, (await this.readConfig(environment, app)) ?? {});
      await this.ctx.store.update((state) => {
        state.apps[key] = {
          app,
          environment,
          cwd,
          createdAt: new Date().toISOString(),
          services: Object.fromEntries(
            names.map((n) => [n, { command: services[n], containerCount: 0, containers: [] }]),
          ),
        };
      });
    });
    return (await this.listApps(environment)).find((a) => a.app === app) as LocalAppInfo;
  }

  /** Stops the app's processes and forgets it (config included). Succeeds when it is gone; says whether it was there. */
  async deprovisionApp(app: string, environment: string): Promise<boolean> {
    checkHandle('app handle', app);
    checkHandle('environment', environment);
    const key = recordKey(environment, app);
    return withLock(this.ctx.layout.lockDir('app', environment, app), async () => {
      const record = (await this.ctx.store.read()).apps[key];
      if (!record) return false;
      for (const service of Object.keys(record.services)) await this.reconcile(record, service, 0, false);
      await rm(this.ctx.layout.appConfigFile(environment, app), { force: true });
      await this.ctx.store.update((state) => {
        delete state.apps[key];
      });
      return true;
    });
  }

  async listApps(environment?: string): Promise<LocalAppInfo[]> {
    const state = await this.ctx.store.read();
    const apps = Object.values(state.apps)
      .filter((a) => environment === undefined || a.environment === environment)
      .sort((a, b) => a.environment.localeCompare(b.environment) || a.app.localeCompare(b.app));
    return Promise.all(
      apps.map(async (a) => ({
        app: a.app,
        environment: a.environment,
        cwd: a.cwd,
        createdAt: a.createdAt,
        services: await Promise.all(
          Object.entries(a.services)
            .sort(([x], [y]) => x.localeCompare(y))
            .map(async ([service, s]) => {
              const alive = await aliveContainers([
                ...s.containers,
                ...(await adoptStarted(s.starting ?? [])),
              ]);
              return {
                app: a.app,
                service,
                command: s.command,
                containerCount: s.containerCount,
                runningCount: alive.length,
                pids: alive.map((c) => c.pid),
              };
            }),
        ),
      })),
    );
  }

  async listServices(environment: string): Promise<ServiceInfo[]> {
    const apps = await this.listApps(environment);
    return apps.flatMap((a) =>
      a.services.map((s) => ({ app: s.app, service: s.service, containerCount: s.containerCount })),
    );
  }

  async scaleService(
    app: string,
    service: string,
    containerCount: number,
    environment: string,
  ): Promise<void> {
    if (!Number.isInteger(containerCount) || containerCount < 0) {
      throw new BadInputError(`container count must be a whole number ≥ 0, got ${containerCount}`);
    }
    if (containerCount > MAX_CONTAINERS_PER_SERVICE) {
      throw new BadInputError(
        `container count ${containerCount} is more than the local platform runs per service (${MAX_CONTAINERS_PER_SERVICE})`,
      );
    }
    await withLock(this.ctx.layout.lockDir('app', environment, app), async () => {
      const record = await this.requireApp(app, environment);
      if (!record.services[service]) {
        throw new NotFoundError(
          `service "${service}" not found in app "${app}" (environment "${environment}"); ` +
            `its services: ${Object.keys(record.services).join(', ')}`,
        );
      }
      await this.reconcile(record, service, containerCount, false);
    });
  }

  /** Merges vars into the app's configuration and restarts its running services, as `aptible config:set` does. */
  async setConfig(app: string, vars: Record<string, string>, environment: string): Promise<void> {
    for (const [name, value] of Object.entries(vars)) {
      checkEnvVarName(name);
      if (typeof value !== 'string') throw new BadInputError(`config value of ${name} must be a string`);
    }
    await withLock(this.ctx.layout.lockDir('app', environment, app), async () => {
      const record = await this.requireApp(app, environment);
      const config = (await this.readConfig(environment, app)) ?? {};
      await this.writeConfig(environment, app, { ...config, ...vars });
      for (const [service, s] of Object.entries(record.services)) {
        if (s.containerCount > 0 || s.containers.length > 0) {
          await this.reconcile(record, service, s.containerCount, true);
        }
      }
    });
  }

  /** The app's configuration. SECRET: values are typically database URLs. */
  async getConfig(app: string, environment: string): Promise<Record<string, string>> {
    await this.requireApp(app, environment);
    return (await this.readConfig(environment, app)) ?? {};
  }

  private async requireApp(app: string, environment: string): Promise<AppRecord> {
    const record = (await this.ctx.store.read()).apps[recordKey(environment, app)];
    if (!record) {
      throw new NotFoundError(
        `app "${app}" not found in environment "${environment}" of the local platform (home ${this.ctx.home}); ` +
          'list them with: pgshift local apps',
      );
    }
    return record;
  }

  private readConfig(environment: string, app: string): Promise<Record<string, string> | undefined> {
    return readJsonIfExists<Record<string, string>>(this.ctx.layout.appConfigFile(environment, app));
  }

  private async writeConfig(environment: string, app: string, config: Record<string, string>): Promise<void> {
    await this.ctx.ensureHome();
    await ensureDir(this.ctx.layout.secretsDir);
    await writeFileAtomic(
      this.ctx.layout.appConfigFile(environment, app),
      JSON.stringify(config, null, 2) + '\n',
      0o600,
    );
  }

  /**
   * Brings one service to exactly `count` live containers (restart: replaces the live ones first). Dead
   * recorded containers count as not running; those a killed scale started without recording them are
   * found by their tag and count as running. Called under the app's lock.
   */
  private async reconcile(
    app: AppRecord,
    service: string,
    count: number,
    restart: boolean,
    options: { stopOnly?: boolean } = {},
  ): Promise<void> {
    const key = recordKey(app.environment, app.app);
    const save = (containers: ContainerRecord[], starting: StartingContainer[] = []) =>
      this.ctx.store.update((state) => {
        const s = state.apps[key]?.services[service];
        if (!s) return;
        if (!options.stopOnly) s.containerCount = count;
        s.containers = [...containers].sort((a, b) => a.index - b.index);
        if (starting.length > 0) s.starting = starting;
        else delete s.starting;
      });

    const current = (await this.ctx.store.read()).apps[key]?.services[service];
    if (!current) return;
    const adopted = await adoptStarted(current.starting ?? []);
    let alive = await aliveContainers([...current.containers, ...adopted]);
    const keep = options.stopOnly || restart ? 0 : count;
    const surplus = [...alive].sort((a, b) => b.index - a.index).slice(0, Math.max(0, alive.length - keep));
    await save(alive);
    await Promise.all(surplus.map((c) => stopContainer(c, this.ctx.stopGraceMs)));
    alive = alive.filter((c) => !surplus.includes(c));
    await save(alive);
    if (options.stopOnly) return;

    const config = (await this.readConfig(app.environment, app.app)) ?? {};
    const logFile = this.ctx.layout.serviceLogFile(app.environment, app.app, service);
    while (alive.length < count) {
      const used = new Set(alive.map((c) => c.index));
      let index = 0;
      while (used.has(index)) index++;
      const starting = { index, tag: randomBytes(12).toString('hex'), startedAt: new Date().toISOString() };
      // Recorded before it exists, so that if this process is killed before recording its pid, the next
      // scale or stop of the service still finds the container (by its tag) rather than leave it untracked.
      await save(alive, [starting]);
      const container = await startContainer({
        index,
        tag: starting.tag,
        command: current.command,
        cwd: app.cwd,
        logFile,
        env: {
          ...baseEnv(),
          ...config,
          PGSHIFT_APP: app.app,
          PGSHIFT_SERVICE: service,
          PGSHIFT_CONTAINER: String(index),
        },
      }).catch(async (err: unknown) => {
        await save(alive);
        throw err;
      });
      alive.push(container);
      await save(alive);
    }
  }

  /** Stops every process of the home; desired container counts stay recorded (see startAll). */
  async stopAll(): Promise<void> {
    const state = await this.ctx.store.read();
    for (const record of Object.values(state.apps)) {
      await withLock(this.ctx.layout.lockDir('app', record.environment, record.app), async () => {
        const fresh = (await this.ctx.store.read()).apps[recordKey(record.environment, record.app)];
        if (!fresh) return;
        for (const [service, s] of Object.entries(fresh.services)) {
          await this.reconcile(fresh, service, s.containerCount, false, { stopOnly: true });
        }
      });
    }
  }

  /** Brings every service to its recorded container count (e.g. after a reboot). */
  async startAll(): Promise<void> {
    const state = await this.ctx.store.read();
    for (const a of Object.values(state.apps)) {
      for (const [service, s] of Object.entries(a.services)) {
        await this.scaleService(a.app, service, s.containerCount, a.environment);
      }
    }
  }
}

/** Containers a killed scale started before it could record them, found by their tags. */
async function adoptStarted(starting: StartingContainer[]): Promise<ContainerRecord[]> {
  const adopted: ContainerRecord[] = [];
  for (const s of starting) {
    const found = await findTaggedContainer(s.tag);
    if (found) adopted.push({ index: s.index, tag: s.tag, startedAt: s.startedAt, ...found });
  }
  return adopted;
}

async function aliveContainers(containers: ContainerRecord[]): Promise<ContainerRecord[]> {
  const flags = await Promise.all(containers.map((c) => isContainerAlive(c)));
  return containers.filter((_, i) => flags[i]);
}
