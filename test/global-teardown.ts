import { rmSync } from 'node:fs';

export default async function globalTeardown(): Promise<void> {
  const state = globalThis.__pgshiftTestHarness;
  if (!state) return;
  globalThis.__pgshiftTestHarness = undefined;
  try {
    await state.env?.teardown();
  } finally {
    rmSync(state.dir, { recursive: true, force: true });
  }
}
