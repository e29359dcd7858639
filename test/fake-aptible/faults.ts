// Faults a test injects into the fake: $FAKE_APTIBLE_HOME/faults.json holds a list of rules. Each rule
// counts the invocations that match it (the counters persist in the state, under its lock, so several
// fake processes share them): the first `skip` pass untouched, the next `times` (default: all the rest)
// get the action.
//
//   { "command": "db:tunnel", "handle": "src", "skip": 0, "times": 1,
//     "action": { "type": "dieAfterBytes", "bytes": 200000 } }
//
// Matching (every given field must match): `command` (e.g. "db:create"); `handle`, the resource the
// command names (the HANDLE/DB_HANDLE/SERVICE/BACKUP_ID argument, `--handle` of backup:restore, `--app` of
// apps:scale/config/config:set); `environment` (`--environment`); `args` (strings that must all appear
// in argv). Actions:
//   fail          { stderr?, stdout?, exitCode? = 1, after? }  fails before the command does anything
//                 (after: true → the command does all its work, then fails instead of printing its
//                 document: a CLI that died after the operation went through)
//   delayMs       { ms, after? }                                waits before (or after) the command's work
//   dieAfterBytes { bytes }    db:tunnel: forwards that many bytes server→client in total, then drops
//                              every connection and exits like a crashed ssh: `Tunnel crashed (255)`, 1
//   dieAfterMs    { ms }       db:tunnel: the same, that long after the tunnel came up
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { paths, updateState } from './state';

export type FaultAction =
  | { type: 'fail'; stderr?: string; stdout?: string; exitCode?: number; after?: boolean }
  | { type: 'delayMs'; ms: number; after?: boolean }
  | { type: 'dieAfterBytes'; bytes: number }
  | { type: 'dieAfterMs'; ms: number };

export interface FaultRule {
  /** Names the rule's counter; default: its position and content. */
  id?: string;
  command?: string;
  handle?: string;
  environment?: string;
  args?: string[];
  skip?: number;
  times?: number;
  action: FaultAction;
}

export interface Invocation {
  command: string;
  argv: string[];
  /** See FaultRule.handle. */
  handle?: string;
  environment?: string;
}

export function counterKey(rule: FaultRule, index: number): string {
  if (rule.id) return `id:${rule.id}`;
  const digest = createHash('sha256').update(JSON.stringify(rule)).digest('hex').slice(0, 12);
  return `${index}:${digest}`;
}

function matches(rule: FaultRule, inv: Invocation): boolean {
  if (rule.command !== undefined && rule.command !== inv.command) return false;
  if (rule.handle !== undefined && rule.handle !== inv.handle) return false;
  if (rule.environment !== undefined && rule.environment !== inv.environment) return false;
  if (rule.args && !rule.args.every((a) => inv.argv.includes(a))) return false;
  return true;
}

async function readRules(home: string): Promise<FaultRule[]> {
  let text: string;
  try {
    text = await readFile(paths.faults(home), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  if (!text.trim()) return [];
  const parsed = JSON.parse(text) as unknown;
  if (!Array.isArray(parsed)) throw new Error(`${paths.faults(home)} must hold a JSON array of fault rules`);
  return parsed as FaultRule[];
}

/** The actions that apply to this invocation; counts it against every matching rule. */
export async function claimFaults(home: string, inv: Invocation): Promise<FaultAction[]> {
  const rules = await readRules(home);
  const candidates = rules.map((rule, index) => ({ rule, index })).filter(({ rule }) => matches(rule, inv));
  if (candidates.length === 0) return [];
  return updateState(home, (state) => {
    const actions: FaultAction[] = [];
    for (const { rule, index } of candidates) {
      const counter = counterKey(rule, index);
      const seen = state.faultCounters[counter] ?? 0;
      state.faultCounters[counter] = seen + 1;
      const skip = rule.skip ?? 0;
      if (seen >= skip && (rule.times === undefined || seen < skip + rule.times)) actions.push(rule.action);
    }
    return actions;
  });
}
