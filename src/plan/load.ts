import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import type { z } from 'zod';
import { BadInputError } from '../errors';
import { planSchema, type Plan } from './schema';

function formatIssue(issue: z.core.$ZodIssue): string {
  const field = issue.path.length ? issue.path.map(String).join('.') : '(plan)';
  return `${field}: ${issue.message}`;
}

/** Validates a plan already read into memory; every problem is reported, each naming its field. */
export function validatePlan(raw: unknown, origin = 'plan'): Plan {
  const result = planSchema.safeParse(raw);
  if (!result.success) {
    const lines = result.error.issues.map((i) => `  - ${formatIssue(i)}`);
    throw new BadInputError(`${origin} is not valid:\n${lines.join('\n')}`);
  }
  const plan = result.data;
  return { ...plan, target: { ...plan.target, environment: plan.target.environment ?? plan.source.environment } };
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
