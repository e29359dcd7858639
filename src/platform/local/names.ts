import { BadInputError } from '../../errors';

// Handles become directory names and lock keys, so they are restricted to what Aptible accepts
// (letters, digits, dot, dash, underscore) and can never contain a path separator or "..".
const HANDLE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const ENV_VAR = /^[A-Za-z_][A-Za-z0-9_]*$/;

export function checkHandle(what: string, value: string): string {
  if (typeof value !== 'string' || !HANDLE.test(value)) {
    throw new BadInputError(
      `${what} "${value}" is not valid: use 1-64 letters, digits, ".", "-" or "_", starting with a letter or digit`,
    );
  }
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
