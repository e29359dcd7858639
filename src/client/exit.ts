import { BadInputError, NotFoundError } from '../errors';

/** Refused because of what was asked, not because something broke: exit code 2, nothing changed. */
export class RefusedError extends BadInputError {}

export function exitCodeFor(err: unknown): number {
  return err instanceof BadInputError || err instanceof NotFoundError ? 2 : 1;
}

/** Runs a command body and turns its outcome into the documented exit codes: 0, 1 failure, 2 bad input. */
export async function runCommand(body: () => Promise<number | void>): Promise<void> {
  try {
    const code = await body();
    process.exitCode = code ?? 0;
  } catch (err) {
    process.stderr.write(`pgshift: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = exitCodeFor(err);
  }
}
