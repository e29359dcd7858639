// Finds the Temporal CLI (which embeds the dev server). Machines of this project cannot download it, so the
// SDK's own download is the last resort; before it we look where a user or CI may have put it, and build it.
import { accessSync, constants, existsSync, readFileSync } from 'node:fs';
import { delimiter, dirname, join } from 'node:path';
import { TypedSearchAttributes } from '@temporalio/common';
import { SEARCH_ATTRIBUTES } from '../workflows/definitions';
import { goInstall } from './go-install';

/** Later tags of the CLI carry a `replace` directive in go.mod, which `go install pkg@version` refuses. */
export const TEMPORAL_CLI_MODULE = 'github.com/temporalio/cli/cmd/temporal@v1.5.1';

/**
 * Dev-server arguments pgshift needs: the search attributes the workflow upserts
 * (`--search-attribute PgshiftStep=Keyword --search-attribute PgshiftSource=Keyword`). Without them
 * registered an upsert fails the workflow task, so `pgshift dev` and the tests register them at server start.
 */
export const DEV_SERVER_SEARCH_ATTRIBUTE_ARGS: readonly string[] = SEARCH_ATTRIBUTES.flatMap((key) => [
  '--search-attribute',
  `${key.name}=${TypedSearchAttributes.toMetadataType(key.type)}`,
]);

function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function onPath(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    const candidate = join(dir, name);
    if (isExecutable(candidate)) return candidate;
  }
  return undefined;
}

/** The repository root: the nearest directory above this file whose package.json is pgshift's. */
export function repoRoot(): string {
  let dir = __dirname;
  for (;;) {
    const manifest = join(dir, 'package.json');
    if (existsSync(manifest)) {
      try {
        if (JSON.parse(readFileSync(manifest, 'utf8')).name === 'pgshift') return dir;
      } catch {
        // An unreadable package.json is not ours; keep climbing.
      }
    }
    const parent = dirname(dir);
    if (parent === dir) throw new Error(`cannot find the pgshift repository above ${__dirname}`);
    dir = parent;
  }
}

/** Where `go install` puts the CLI, and where CI may restore it from its cache. */
export function cachedTemporalCliPath(): string {
  return join(repoRoot(), '.cache', 'bin', 'temporal');
}

export interface ResolveTemporalCliOptions {
  /** Build with `go install` when nothing else is found (default true). */
  build?: boolean;
}

/**
 * Path of the `temporal` CLI: `TEMPORAL_CLI_PATH`, then `temporal` on PATH, then `<repo>/.cache/bin/temporal`,
 * then a `go install` into that cache when Go is available. Undefined when none applies: callers then let
 * the SDK download the CLI (`executable: { type: 'cached-download' }`), which needs internet.
 */
export async function resolveTemporalCli(
  options: ResolveTemporalCliOptions = {},
): Promise<string | undefined> {
  const fromEnv = process.env.TEMPORAL_CLI_PATH;
  if (fromEnv) {
    if (!isExecutable(fromEnv)) throw new Error(`TEMPORAL_CLI_PATH=${fromEnv} is not an executable file`);
    return fromEnv;
  }
  const found = onPath('temporal');
  if (found) return found;
  const cached = cachedTemporalCliPath();
  if (isExecutable(cached)) return cached;
  if (options.build === false) return undefined;
  const go = onPath('go');
  if (!go) return undefined;
  process.stderr.write(
    `pgshift: no Temporal CLI (it runs the local dev server) at TEMPORAL_CLI_PATH, on PATH or in ` +
      `${dirname(cached)}; building it there with \`go install ${TEMPORAL_CLI_MODULE}\`: 8-17 minutes on ` +
      `2 cores the first time, later builds reuse Go's cache. To skip it, stop now (Ctrl-C) and set ` +
      `TEMPORAL_CLI_PATH to an existing \`temporal\` binary.\n`,
  );
  try {
    await goInstall({ go, module: TEMPORAL_CLI_MODULE, gobin: dirname(cached) });
  } catch (err) {
    // Go without a module proxy in reach: the SDK's download is the one way left.
    process.stderr.write(
      `pgshift: ${(err as Error).message}\npgshift: falling back to the SDK's download of the CLI\n`,
    );
    return undefined;
  }
  if (!isExecutable(cached)) throw new Error(`go install finished but ${cached} is not there`);
  return cached;
}

/** The `server.executable` option of `@temporalio/testing`: our binary, or the SDK's download as a last resort. */
export async function devServerExecutable(
  options: ResolveTemporalCliOptions = {},
): Promise<{ type: 'existing-path'; path: string } | { type: 'cached-download' }> {
  const path = await resolveTemporalCli(options);
  return path ? { type: 'existing-path', path } : { type: 'cached-download' };
}
