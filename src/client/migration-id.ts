import { BadInputError } from '../errors';
import type { Plan } from '../plan/schema';

/** One migration per source at a time: the workflow id is the source's identity. */
export function migrationIdFor(plan: Plan): string {
  return `pgshift-${plan.platform}-${plan.source.environment}-${plan.source.handle}`;
}

export const SUPPORTED_PLATFORMS = ['local', 'aptible'];

// A workflow id names the worker's dump directory (<work dir>/dumps/<id>) and appears in commands the
// status prints, so it is one plain word: never ".", "..", a path or a shell metacharacter. The ids
// pgshift derives from a plan always fit (handles are at most 63 characters).
const WORKFLOW_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$/;
export const WORKFLOW_ID_RULE =
  'must be 1-200 characters of letters, digits, ".", "_" or "-", starting with a letter or digit';

/** Why `id` cannot be a workflow id given to pgshift, or undefined when it can. */
export function workflowIdProblem(id: string): string | undefined {
  return WORKFLOW_ID.test(id) ? undefined : WORKFLOW_ID_RULE;
}

/** Refuses (exit 2) an id given through the API rather than the CLI's own parser. */
export function checkWorkflowId(id: string): string {
  const problem = workflowIdProblem(id);
  if (problem) throw new BadInputError(`workflow id ${JSON.stringify(id)} is not valid: it ${problem}`);
  return id;
}
