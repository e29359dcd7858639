import { type Client, WorkflowExecutionAlreadyStartedError, type WorkflowHandle } from '@temporalio/client';
import { TypedSearchAttributes } from '@temporalio/common';
import type { MigrationInput } from '../activities/contract';
import type { Plan } from '../plan/schema';
import { BadInputError } from '../errors';
import { SEARCH_ATTRIBUTES, SOURCE_ATTRIBUTE, TASK_QUEUE } from '../workflows/definitions';
import type { migrationWorkflow } from '../workflows';
import { checkWorkflowId, migrationIdFor, SUPPORTED_PLATFORMS } from './migration-id';
import { RefusedError } from './exit';

const KEYWORD = 2; // temporal.api.enums.v1.IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD

/**
 * Makes sure pgshift's search attributes exist, registering them where the server lets us (a dev server
 * or self-hosted cluster). Where it does not (e.g. Temporal Cloud without them), migrations still run,
 * without the step shown as a search attribute.
 */
export async function ensureSearchAttributes(client: Client): Promise<boolean> {
  const operator = client.connection.operatorService;
  const namespace = client.options.namespace;
  try {
    const { customAttributes } = await operator.listSearchAttributes({ namespace });
    const missing = SEARCH_ATTRIBUTES.filter((k) => !(k.name in (customAttributes ?? {})));
    if (missing.length === 0) return true;
    await operator.addSearchAttributes({
      namespace,
      searchAttributes: Object.fromEntries(missing.map((k) => [k.name, KEYWORD])),
    });
    return true;
  } catch {
    return false;
  }
}

export interface StartOptions {
  id?: string;
  taskQueue?: string;
}

export async function startMigration(
  client: Client,
  plan: Plan,
  options: StartOptions = {},
): Promise<WorkflowHandle<typeof migrationWorkflow>> {
  if (!SUPPORTED_PLATFORMS.includes(plan.platform)) {
    throw new BadInputError(
      `platform "${plan.platform}" is not available in this version of pgshift (available: ${SUPPORTED_PLATFORMS.join(', ')})`,
    );
  }
  const migrationId = checkWorkflowId(options.id ?? migrationIdFor(plan));
  const input: MigrationInput = { migrationId, plan };
  const searchAttributes = await ensureSearchAttributes(client);
  try {
    return await client.workflow.start('migrationWorkflow', {
      workflowId: migrationId,
      taskQueue: options.taskQueue ?? TASK_QUEUE,
      args: [input, { searchAttributes }],
      workflowIdConflictPolicy: 'FAIL',
      // A completed migration is not run again under the same id: its target is in service now.
      workflowIdReusePolicy: 'ALLOW_DUPLICATE_FAILED_ONLY',
      staticSummary: `Migrate ${plan.source.handle} → ${plan.target.handle} (PostgreSQL ${plan.target.version}) on ${plan.platform}`,
      ...sourceSearchAttribute(plan, searchAttributes),
    });
  } catch (err) {
    if (err instanceof WorkflowExecutionAlreadyStartedError) {
      throw new RefusedError(
        `a migration of ${plan.source.handle} is already running, or has completed, as ${migrationId}; ` +
          `see \`pgshift status ${migrationId}\` (to migrate this source again, pass --id)`,
      );
    }
    throw err;
  }
}

/** Tags a run with its source, so `pgshift list` and the UI can filter by it (when the server knows it). */
export function sourceSearchAttribute(
  plan: Plan,
  registered: boolean,
): { typedSearchAttributes?: TypedSearchAttributes } {
  if (!registered) return {};
  return {
    typedSearchAttributes: new TypedSearchAttributes([{ key: SOURCE_ATTRIBUTE, value: sourceKey(plan) }]),
  };
}

export function sourceKey(plan: Plan): string {
  return `${plan.platform}/${plan.source.environment}/${plan.source.handle}`;
}
