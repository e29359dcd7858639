// A rehearsal's databases are named after the plan's, so a retry finds its own, a later rehearsal replaces
// nothing it did not make (ownership is checked by label), and an operator recognises them in db:list.
// Pure: the workflow derives the same names as the activities.
import type { Plan } from '../plan/schema';

const SUFFIX = '-rehearsal';
const MAX_HANDLE = 63;

export function rehearsalHandle(handle: string): string {
  return `${handle.slice(0, MAX_HANDLE - SUFFIX.length)}${SUFFIX}`;
}

/** The copy of production, restored from the source's latest backup, in the source's environment. */
export function copyHandleOf(plan: Plan): string {
  return rehearsalHandle(plan.source.handle);
}

/** The rehearsal's stand-in for the target, in the target's environment. */
export function rehearsalTargetHandleOf(plan: Plan): string {
  return rehearsalHandle(plan.target.handle);
}

/**
 * Why the plan's handles leave no room for a rehearsal's own, or undefined. Only long handles can collide
 * (the suffix truncates them): a rehearsal must never name the source, the target or one database twice.
 */
export function rehearsalHandleConflict(plan: Plan): string | undefined {
  const mine = [
    { what: 'copy', handle: copyHandleOf(plan), environment: plan.source.environment },
    { what: 'rehearsal target', handle: rehearsalTargetHandleOf(plan), environment: plan.target.environment },
  ];
  const theirs = [
    { what: 'source', handle: plan.source.handle, environment: plan.source.environment },
    { what: 'target', handle: plan.target.handle, environment: plan.target.environment },
  ];
  const same = (a: { handle: string; environment: string }, b: { handle: string; environment: string }) =>
    a.handle === b.handle && a.environment === b.environment;
  for (const m of mine) {
    const clash = theirs.find((t) => same(m, t));
    if (clash) {
      return `the rehearsal's ${m.what} would be named "${m.handle}", like the plan's ${clash.what}; shorten the handles`;
    }
  }
  if (same(mine[0], mine[1])) {
    return `the rehearsal's copy and target would both be named "${mine[0].handle}"; shorten the handles`;
  }
  return undefined;
}
