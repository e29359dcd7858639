import type { MigrationInput, RecordedService } from './contract';
import { type ActivityDeps, platformOf } from './deps';
import { withScope } from './scope';

// Scaling to a fixed count is idempotent, so a retry after a partial run simply finishes the job.

export async function scaleServicesDown(
  deps: ActivityDeps,
  input: MigrationInput,
  services: RecordedService[],
) {
  await scaleTo(deps, input, services, () => 0);
}

export async function scaleServicesUp(
  deps: ActivityDeps,
  input: MigrationInput,
  services: RecordedService[],
) {
  await scaleTo(deps, input, services, (s) => s.containerCount);
}

async function scaleTo(
  deps: ActivityDeps,
  input: MigrationInput,
  services: RecordedService[],
  count: (s: RecordedService) => number,
): Promise<void> {
  const platform = platformOf(deps, input);
  await withScope(platform, async (scope) => {
    for (const s of services) {
      scope.progress({ app: s.app, service: s.service });
      await platform.scaleService(s.app, s.service, count(s), input.plan.source.environment);
    }
  });
}

/** The guide's `aptible config:set --app APP DB_URL=...`, with the target's own (app-facing) URL. */
export async function updateServiceConfig(deps: ActivityDeps, input: MigrationInput): Promise<void> {
  const { target } = input.plan;
  await pointConfigAt(deps, input, target.handle, target.environment);
}

/** Compensation: point the apps back at the source. */
export async function revertServiceConfig(deps: ActivityDeps, input: MigrationInput): Promise<void> {
  const { source } = input.plan;
  await pointConfigAt(deps, input, source.handle, source.environment);
}

async function pointConfigAt(deps: ActivityDeps, input: MigrationInput, handle: string, environment: string) {
  const platform = platformOf(deps, input);
  await withScope(platform, async (scope) => {
    if (input.plan.config.length === 0) return;
    const url = scope.secret(await platform.databaseUrl(handle, environment));
    const byApp = new Map<string, Record<string, string>>();
    for (const c of input.plan.config) {
      byApp.set(c.app, { ...byApp.get(c.app), [c.variable]: url });
    }
    for (const [app, vars] of byApp) {
      await platform.setConfig(app, vars, input.plan.source.environment);
    }
  });
}
