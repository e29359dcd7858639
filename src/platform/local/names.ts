import { BadInputError } from '../../errors';
import { handle as planHandle } from '../../plan/schema';

// Handles become directory names and lock keys. Databases, environments and apps follow the plan's rule
// (what a plan can name is exactly what can be created here), which never allows a path separator or "..".
// Service names follow Aptible's process types: letters of either case too.
const SERVICE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const ENV_VAR = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Why `value` is not a valid database, environment or app handle, or undefined when it is one. */
export function handleProblem(value: string): string | undefined {
  const result = planHandle.safeParse(value);
  return result.success ? undefined : (result.error.issues[0]?.message ?? 'is not a handle');
}

export function checkHandle(what: string, value: string): string {
  const problem = handleProblem(value);
  if (problem) throw new BadInputError(`${what} ${JSON.stringify(value)} is not valid: it ${problem}`);
  return value;
}

/** Why `value` is not a valid service name, or undefined when it is one. */
export function serviceNameProblem(value: string): string | undefined {
  return typeof value === 'string' && SERVICE.test(value)
    ? undefined
    : 'must be 1-64 letters, digits, ".", "-" or "_", starting with a letter or digit';
}

export function checkServiceName(value: string): string {
  const problem = serviceNameProblem(value);
  if (problem) throw new BadInputError(`service name ${JSON.stringify(value)} is not valid: it ${problem}`);
  return value;
}

export function checkEnvVarName(name: string): string {
  if (!ENV_VAR.test(name)) {
    throw new BadInputError(
      `config key "${name}" is not a valid environment variable name (letters, digits, "_", not starting with a digit)`,
    );
  }
  return name;
}
