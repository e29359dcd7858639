// One Temporal dev server and one workflow bundle for the whole Jest run: starting a server and running
// webpack per test file would cost more than the tests. Jest workers reach both through process.env.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { bundleWorkflowCode, DefaultLogger, Runtime } from '@temporalio/worker';
import { devServerExecutable } from '../src/temporal/temporal-cli';
import { SEARCH_ATTRIBUTES } from '../src/workflows/definitions';
import { TEMPORAL_ADDRESS_ENV, WORKFLOW_BUNDLE_ENV, type TestHarnessState } from './helpers/temporal';

export default async function globalSetup(): Promise<void> {
  const started = Date.now();
  // The SDK logs every worker start and stop at INFO; test output should show only what went wrong.
  Runtime.install({ logger: new DefaultLogger('WARN') });

  const dir = mkdtempSync(join(tmpdir(), 'pgshift-test-'));
  const state: TestHarnessState = { dir };
  globalThis.__pgshiftTestHarness = state;

  // A server given from outside (e.g. `temporal server start-dev` kept running while iterating) is reused;
  // it must have the search attributes registered (see DEV_SERVER_SEARCH_ATTRIBUTE_ARGS).
  if (!process.env[TEMPORAL_ADDRESS_ENV]) {
    const env = await TestWorkflowEnvironment.createLocal({
      server: { executable: await devServerExecutable(), searchAttributes: SEARCH_ATTRIBUTES },
    });
    state.env = env;
    process.env[TEMPORAL_ADDRESS_ENV] = env.address;
  }

  const { code } = await bundleWorkflowCode({
    workflowsPath: require.resolve('../src/workflows'),
    logger: new DefaultLogger('WARN'),
  });
  const bundlePath = join(dir, 'workflow-bundle.js');
  writeFileSync(bundlePath, code);
  process.env[WORKFLOW_BUNDLE_ENV] = bundlePath;

  process.stderr.write(
    `\nTemporal dev server at ${process.env[TEMPORAL_ADDRESS_ENV]}, workflow bundle built ` +
      `(${((Date.now() - started) / 1000).toFixed(1)}s)\n`,
  );
}
