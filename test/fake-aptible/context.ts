import type { LocalPlatform } from '../../src/platform/local';
import { redact } from '../../src/lib/redact';
import { type OptionValue, ThorError } from './argv';
import type { FaultAction } from './faults';
import { type FakeState, type OperationRecord, nextId, updateState } from './state';

/** What a command implementation gets from main.ts. */
export interface Ctx {
  home: string;
  command: string;
  args: string[];
  options: Record<string, OptionValue>;
  /** The user the token names (its JWT `email`), as the API would record on operations. */
  userEmail: string;
  /** Writes to stdout now (operation logs, which the real CLI passes through from ssh). */
  out(text: string): void;
  /** One line on stderr (CLI.logger: plain text, no prefix). */
  log(line: string): void;
  /** The backing local platform (databases and backups are real clusters). */
  local(): LocalPlatform;
  faults: FaultAction[];
}

export function stringOption(ctx: Ctx, name: string): string | undefined {
  const value = ctx.options[name];
  return value === undefined ? undefined : String(value);
}

export function numberOption(ctx: Ctx, name: string): number | undefined {
  const value = ctx.options[name];
  return value === undefined ? undefined : Number(value);
}

export function newOperation(
  state: FakeState,
  type: string,
  resource: string,
  userEmail: string,
): OperationRecord {
  const op: OperationRecord = {
    id: nextId(state),
    type,
    status: 'running',
    userEmail,
    createdAt: new Date().toISOString(),
    resource,
  };
  state.operations[String(op.id)] = op;
  return op;
}

/**
 * attach_to_operation_logs (helpers/operation.rb:26-47): blocks until the operation ends. The operation's
 * log is whatever the SSH portal writes, passed straight through to the CLI's stdout (helpers/ssh.rb:66-68
 * spawns ssh with `out: :out`; PR #129: the portal "forward[s] stdout from operations"; report 0.5,
 * inferred). So a command that renders a document afterwards (db:create, backup:restore) prints these
 * lines on stdout BEFORE its JSON document: drivers must parse the trailing document. The lines' wording
 * is the fake's own; only where they go is modelled. When the operation fails, the portal exits non-zero
 * and the CLI prints the fallback warnings on stderr, polls, and fails with `Operation #N failed.`.
 */
export async function runOperation<T>(
  ctx: Ctx,
  op: OperationRecord,
  description: string,
  work: () => Promise<T>,
): Promise<T> {
  const started = Date.now();
  ctx.out(`INFO -- : Starting ${description} operation with ID: ${op.id}\n`);
  try {
    const result = await work();
    await setOperationStatus(ctx.home, op.id, 'succeeded');
    const seconds = ((Date.now() - started) / 1000).toFixed(2);
    ctx.out(`INFO -- : COMPLETED (after ${seconds}s): ${description} operation with ID: ${op.id}\n`);
    return result;
  } catch (err) {
    await setOperationStatus(ctx.home, op.id, 'failed').catch(() => undefined);
    ctx.out(`ERROR -- : ${redact(err instanceof Error ? err.message : String(err))}\n`);
    for (const line of [
      'Disconnected from logs, waiting for operation to complete',
      'Once complete, the logs can be viewed here:',
      `    https://app.aptible.com/operations/${op.id}`,
    ]) {
      ctx.log(line);
    }
    throw new ThorError(`Operation #${op.id} failed.`);
  }
}

async function setOperationStatus(
  home: string,
  id: number,
  status: OperationRecord['status'],
): Promise<void> {
  await updateState(home, (state) => {
    const op = state.operations[String(id)];
    if (op) op.status = status;
  });
}
