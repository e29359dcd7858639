import type { Plan } from '../plan/schema';

/** One migration per source at a time: the workflow id is the source's identity. */
export function migrationIdFor(plan: Plan): string {
  return `pgshift-${plan.platform}-${plan.source.environment}-${plan.source.handle}`;
}

export const SUPPORTED_PLATFORMS = ['local', 'aptible'];
