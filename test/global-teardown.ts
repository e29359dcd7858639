import { rmSync } from 'node:fs';

/** Stops the dev server and removes the harness directory (PGSHIFT_TEST_KEEP_HARNESS=1 keeps it: its log). */
export default async function globalTeardown(): Promise<void> {
  const state = globalThis.__pgshiftTestHarness;
  if (!state) return;
  globalThis.__pgshiftTestHarness = undefined;
  try {
    await state.server?.stop();
  } finally {
    if (process.env.PGSHIFT_TEST_KEEP_HARNESS) process.stderr.write(`\nTest harness kept: ${state.dir}\n`);
    else rmSync(state.dir, { recursive: true, force: true });
  }
}
