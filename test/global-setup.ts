// One Temporal dev server and one workflow bundle for the whole Jest run: starting a server and running
// webpack per test file would cost more than the tests. Jest workers reach both through process.env.
// A green run prints one line here: the server's own log goes to temporal.log in the harness directory.
import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Client, Connection } from '@temporalio/client';
import { bundleWorkflowCode, DefaultLogger } from '@temporalio/worker';
import { staleSource } from '../bin/stale-build';
import { startDevServer } from '../src/temporal/dev-server';
import { SOURCE_ATTRIBUTE } from '../src/workflows/definitions';
import { TEMPORAL_ADDRESS_ENV, WORKFLOW_BUNDLE_ENV, type TestHarnessState } from './helpers/temporal';

const REPO = join(__dirname, '..');

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/**
 * The tests run `pgshift` as a user does, through bin/pgshift.js: the compiled dist/ when it is current,
 * else the sources through tsx, several seconds per command on a loaded machine. Build it when stale.
 */
async function buildCli(): Promise<string> {
  if (staleSource() === undefined) return 'CLI build current';
  try {
    await promisify(execFile)(process.execPath, [join(REPO, 'bin', 'build-cli.js')], { cwd: REPO });
    return 'CLI built';
  } catch (err) {
    // A syntax error somewhere: the test of that file says so; bin/pgshift.js runs the sources meanwhile.
    const output = (err as { stderr?: string }).stderr ?? String(err);
    process.stderr.write(`\nthe CLI build failed; the CLI runs through tsx:\n${output}\n`);
    return 'CLI build failed';
  }
}

/** Until the server answers a visibility query on a pgshift search attribute (registered at its start). */
async function waitUntilServing(address: string, timeoutMs = 180_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const connection = await Connection.connect({ address });
  try {
    const client = new Client({ connection });
    for (;;) {
      try {
        await client.workflow.count(`${SOURCE_ATTRIBUTE.name} = "harness-check"`);
        return;
      } catch (err) {
        if (Date.now() > deadline) throw new Error(`the dev server at ${address} is not serving: ${err}`);
        await new Promise((r) => setTimeout(r, 500));
      }
    }
  } finally {
    await connection.close();
  }
}

export default async function globalSetup(): Promise<void> {
  const started = Date.now();
  const dir = mkdtempSync(join(tmpdir(), 'pgshift-test-'));
  const state: TestHarnessState = { dir };
  globalThis.__pgshiftTestHarness = state;

  // While the server starts, and webpack bundles, tsc builds the CLI: three processes for two cores.
  const cli = buildCli();

  // A server given from outside (e.g. `temporal server start-dev` kept running while iterating) is reused;
  // it must have the search attributes registered (see DEV_SERVER_SEARCH_ATTRIBUTE_ARGS).
  let serverNote = 'given';
  if (!process.env[TEMPORAL_ADDRESS_ENV]) {
    state.server = await startDevServer({ home: dir, port: await freePort(), ephemeral: true });
    process.env[TEMPORAL_ADDRESS_ENV] = state.server.address;
    serverNote = `log: ${join(dir, 'temporal.log')}`;
  }
  await waitUntilServing(process.env[TEMPORAL_ADDRESS_ENV]!);

  const { code } = await bundleWorkflowCode({
    workflowsPath: require.resolve('../src/workflows'),
    logger: new DefaultLogger('WARN'),
  });
  const bundlePath = join(dir, 'workflow-bundle.js');
  writeFileSync(bundlePath, code);
  process.env[WORKFLOW_BUNDLE_ENV] = bundlePath;

  process.stderr.write(
    `\nTemporal dev server at ${process.env[TEMPORAL_ADDRESS_ENV]} (${serverNote}), workflow bundle built, ` +
      `${await cli} (${((Date.now() - started) / 1000).toFixed(1)}s)\n`,
  );
}
