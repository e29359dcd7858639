// Durations in plans use the `ms` notation that Temporal's timers accept directly ("30m", "24h", "7d"),
// so the workflow can hand them to sleep() and condition() without converting.
const UNIT_MS: Record<string, number> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 604_800_000,
};

const MAX_DURATION_MS = 366 * UNIT_MS.d;

export function parseDuration(text: string): number | undefined {
  const match = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)$/.exec(text.trim());
  if (!match) return undefined;
  const value = Number(match[1]) * UNIT_MS[match[2]];
  // A timer beyond a year is a typo, and beyond what dates can hold it would break the workflow itself.
  return value > 0 && value <= MAX_DURATION_MS ? value : undefined;
}

export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)}ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)}s`;
  const total = Math.round(ms / 1000);
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = total % 60;
  return h > 0 ? `${h}h${m}m` : `${m}m${s}s`;
}
