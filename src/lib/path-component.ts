import { isAbsolute, relative, resolve, sep } from 'node:path';
import { BadInputError } from '../errors';

// Ids, handles and app or service names become file and directory names. One that is not a single plain
// component ("..", ".", "a/b", a NUL) would put the path outside its parent, and whatever is then written
// or removed there belongs to something else: `--id ..` once removed a worker's whole work directory.

const MAX_COMPONENT_BYTES = 255;

/** Why `name` cannot be one component of a path, or undefined when it can. */
export function unsafeComponentReason(name: string): string | undefined {
  if (typeof name !== 'string' || name === '') return 'it is empty';
  if (name === '.' || name === '..') return `"${name}" names a directory itself or its parent`;
  if (name.includes('/') || name.includes('\\')) return 'it contains a path separator';
  if (name.includes('\0')) return 'it contains a NUL character';
  if (Buffer.byteLength(name) > MAX_COMPONENT_BYTES) return `it is longer than ${MAX_COMPONENT_BYTES} bytes`;
  return undefined;
}

/**
 * `parent/part/...`, refused (BadInputError) unless every part is one plain component and the resolved
 * path lies strictly inside parent. `what` names the parts in the error, e.g. "migration id".
 */
export function pathWithin(parent: string, what: string, ...parts: string[]): string {
  for (const part of parts) {
    const reason = unsafeComponentReason(part);
    if (reason) {
      throw new BadInputError(`${what} ${JSON.stringify(part)} cannot be used in a file name: ${reason}`);
    }
  }
  const base = resolve(parent);
  const path = resolve(base, ...parts);
  const rel = relative(base, path);
  if (rel === '' || rel === '..' || rel.startsWith(`..${sep}`) || isAbsolute(rel)) {
    throw new BadInputError(`${what} ${JSON.stringify(parts.join('/'))} would lead outside ${base}`);
  }
  return path;
}
