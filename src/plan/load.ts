import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import type { z } from 'zod';
import { BadInputError } from '../errors';
import { planSchema, type Plan } from './schema';

// zod words a missing field as "expected string, received undefined"; an operator reads "is required".
const errorMap: z.core.$ZodErrorMap = (issue) =>
  issue.code === 'invalid_type' && issue.input === undefined ? 'is required' : undefined;

function fieldName(path: PropertyKey[]): string {
  return path.length ? path.map(String).join('.') : '(plan)';
}

function formatIssue(issue: z.core.$ZodIssue): string[] {
  // zod reports unknown keys on their parent object; naming each key itself points straight at the typo.
  if (issue.code === 'unrecognized_keys') {
    return issue.keys.map((key) => `${fieldName([...issue.path, key])}: is not a known field`);
  }
  return [`${fieldName(issue.path)}: ${issue.message}`];
}

/** Validates a plan already read into memory; every problem is reported, each naming its field. */
export function validatePlan(raw: unknown, origin = 'plan'): Plan {
  const result = planSchema.safeParse(raw, { error: errorMap });
  const problems = result.success ? [] : result.error.issues.flatMap(formatIssue);
  problems.push(...defaultsThatDoNotApply(raw));
  if (!result.success || problems.length > 0) {
    const lines = problems.map((line) => `  - ${line}`);
    throw new BadInputError(`${origin} is not valid:\n${lines.join('\n')}`);
  }
  const plan = result.data;
  return {
    ...plan,
    target: { ...plan.target, environment: plan.target.environment ?? plan.source.environment },
  };
}

/**
 * source.environment defaults to "local", the local platform's only environment. On Aptible that default
 * would name an environment that almost surely does not exist, or worse, the wrong one: it must be given.
 */
function defaultsThatDoNotApply(raw: unknown): string[] {
  const plan = raw as { platform?: unknown; source?: { environment?: unknown } } | null;
  if (plan?.platform !== 'aptible' || typeof plan.source !== 'object' || plan.source === null) return [];
  return plan.source.environment === undefined
    ? ['source.environment: is required for platform "aptible" (SOURCE_ENVIRONMENT of the guide)']
    : [];
}

/** Reads a YAML or JSON plan file (JSON is YAML, so one parser serves both). */
export function loadPlanFile(path: string): Plan {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new BadInputError(`cannot read plan file ${path}: ${(err as NodeJS.ErrnoException).code ?? err}`);
  }
  let raw: unknown;
  try {
    raw = parseYaml(text);
  } catch (err) {
    throw new BadInputError(`${path} is not valid YAML or JSON: ${(err as Error).message}`);
  }
  return validatePlan(raw, path);
}
