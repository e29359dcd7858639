import { closeSync, openSync, readSync, statSync } from 'node:fs';
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

/**
 * A plan is a few lines of YAML; a file past this is the wrong file, and parsing it would cost minutes and
 * gigabytes before the schema refuses it.
 */
export const MAX_PLAN_BYTES = 1024 * 1024;

/** Reads a YAML or JSON plan file (JSON is YAML, so one parser serves both). */
export function loadPlanFile(path: string): Plan {
  const text = readPlanText(path);
  let raw: unknown;
  try {
    raw = parseYaml(text);
  } catch (err) {
    throw new BadInputError(`${path} is not valid YAML or JSON: ${(err as Error).message}`);
  }
  return validatePlan(raw, path);
}

/** The file's text, refused past MAX_PLAN_BYTES without reading more than one byte beyond it. */
function readPlanText(path: string): string {
  const cannotRead = (err: unknown) =>
    new BadInputError(`cannot read plan file ${path}: ${(err as NodeJS.ErrnoException).code ?? err}`);
  const tooLarge = (size: string) =>
    new BadInputError(
      `plan file ${path} is ${size}, more than the ${MAX_PLAN_BYTES} bytes (1 MiB) a plan may have; ` +
        'a plan is a few lines of YAML or JSON: check the path given to -f',
    );
  let size: number;
  try {
    size = statSync(path).size;
  } catch (err) {
    throw cannotRead(err);
  }
  if (size > MAX_PLAN_BYTES) throw tooLarge(`${size} bytes`);
  // The size may grow meanwhile, and a device or a pipe has none: read at most one byte past the cap.
  const buffer = Buffer.alloc(MAX_PLAN_BYTES + 1);
  let length = 0;
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (err) {
    throw cannotRead(err);
  }
  try {
    for (;;) {
      const n = readSync(fd, buffer, length, buffer.length - length, null);
      length += n;
      if (n === 0 || length === buffer.length) break;
    }
  } catch (err) {
    throw cannotRead(err);
  } finally {
    closeSync(fd);
  }
  if (length > MAX_PLAN_BYTES) throw tooLarge(`over ${MAX_PLAN_BYTES} bytes`);
  return buffer.subarray(0, length).toString('utf8');
}
