// When the downtime may start (plan.cutover.window) and how long it is expected to last. Pure and
// deterministic: the workflow calls it with its own Date.now(); Intl's time-zone data works in the
// workflow sandbox, so a daily window's next start is computed here rather than in an activity.
import { formatDuration, parseDuration } from '../lib/duration';
import { allowancesFor } from '../lib/downtime-allowances';
import type { Plan } from '../plan/schema';

export type DowntimeWindow = NonNullable<Plan['cutover']['window']>;

/**
 * The documented rate a downtime is estimated at when no rehearsal's estimate is given: bytes of the
 * source (as the platform reports its size) per second, for the dump, the restore and the verification
 * together. Deliberately slow (10 MiB/s): an estimate that is too short would start a downtime that
 * overruns its window, one too long only waits for a later window.
 */
export const ESTIMATE_BYTES_PER_SECOND = 10 * 1024 * 1024;

export interface DowntimeEstimateUsed {
  ms: number;
  /** What the estimate rests on, in words, for the status and the warnings. */
  basis: string;
}

/** The plan's estimate (a rehearsal's, given in the plan or with --downtime-estimate), else one from size. */
export function estimateDowntime(plan: Plan, sourceSizeBytes: number | undefined): DowntimeEstimateUsed {
  const given = plan.cutover.downtimeEstimate;
  if (given !== undefined) {
    // The plan schema accepted it only if parseDuration does.
    return { ms: parseDuration(given)!, basis: `plan.cutover.downtimeEstimate ${given}` };
  }
  const allowances = allowancesFor(plan.platform);
  const apps = new Set(plan.config.map((c) => c.app)).size;
  const operationsMs = 2 * plan.services.length * allowances.scaleServiceMs + apps * allowances.configSetMs;
  if (sourceSizeBytes === undefined) {
    return {
      ms: operationsMs,
      basis: 'scaling and config allowances only: the source size is unknown (give a rehearsal estimate)',
    };
  }
  const copyMs = Math.ceil((sourceSizeBytes / ESTIMATE_BYTES_PER_SECOND) * 1000);
  return {
    ms: copyMs + operationsMs,
    basis: `${sourceSizeBytes} bytes at 10 MiB/s, plus scaling and config allowances`,
  };
}

export interface WindowChoice {
  /** When the scale-down starts (epoch ms): now, or the start of a window. */
  startAt: number;
  /** When the chosen window ends; absent for a one-off window without an end. */
  endsAt?: number;
  /** Set when the estimate does not fit where it would have started, saying what was done instead. */
  warning?: string;
  /**
   * Set when the downtime must not start at all: a one-off window that has passed, or that the estimate
   * overruns. Nothing is down yet, so the migration rolls back rather than go down outside the window.
   */
  refusal?: string;
}

/** The plan's window in words: "daily 02:00-04:00 Europe/Berlin", "from 2026-12-01 02:00 UTC". */
export function describeWindow(window: DowntimeWindow): string {
  if (window.daily) {
    const { from, to, timeZone } = window.daily;
    return `daily ${from}-${to} ${timeZone}`;
  }
  const start = formatInstant(Date.parse(window.start!), 'UTC');
  return window.end ? `${start} to ${formatInstant(Date.parse(window.end), 'UTC')}` : `from ${start}`;
}

/** The zone a window's times are shown in. */
export function windowZone(window: DowntimeWindow): string {
  return window.daily?.timeZone ?? 'UTC';
}

/**
 * Where the downtime starts. A one-off window: at its start (at once if it has begun); refused when it has
 * ended, or when the estimate overruns its end, since there is no later window to wait for. A daily window:
 * at once if the estimate fits in what is left of the current window, else at the start of the next window
 * it fits in; an estimate longer than the whole window starts at the beginning of the next whole window,
 * with a warning that it will overrun.
 */
export function chooseDowntimeStart(window: DowntimeWindow, now: number, estimateMs: number): WindowChoice {
  const estimate = formatDuration(estimateMs);
  if (!window.daily) {
    const startAt = Math.max(now, Date.parse(window.start!));
    if (window.end === undefined) return { startAt };
    const endsAt = Date.parse(window.end);
    if (startAt + estimateMs <= endsAt) return { startAt, endsAt };
    const zone = windowZone(window);
    const what =
      now >= endsAt
        ? `The downtime window ended at ${formatInstant(endsAt, zone)}, before the migration reached it`
        : `The estimated downtime (${estimate}) does not fit before the window ends at ` +
          `${formatInstant(endsAt, zone)}`;
    const refusal =
      `${what}; a one-off window has no next one, so the services were not stopped. ` +
      'Start the migration again with a later or longer plan.cutover.window, or with a measured ' +
      "estimate (a rehearsal's) in plan.cutover.downtimeEstimate or --downtime-estimate.";
    return { startAt, endsAt, refusal };
  }
  const { timeZone } = window.daily;
  const windows = dailyWindows(window.daily, now).filter((w) => w.end > now);
  let skipped: { start: number; end: number } | undefined;
  for (const w of windows) {
    const begin = Math.max(now, w.start);
    if (begin + estimateMs <= w.end) {
      if (!skipped) return { startAt: begin, endsAt: w.end };
      return {
        startAt: begin,
        endsAt: w.end,
        warning:
          `The estimated downtime (${estimate}) does not fit in what is left of the current window ` +
          `(until ${formatInstant(skipped.end, timeZone)}): waiting for the next one, at ` +
          `${formatInstant(begin, timeZone)}.`,
      };
    }
    skipped ??= w;
  }
  // Too long for any window: at least use a whole one, from its beginning.
  const first = windows.find((w) => w.start >= now) ?? windows[windows.length - 1];
  const startAt = first.start;
  return {
    startAt,
    endsAt: first.end,
    warning:
      `The estimated downtime (${estimate}) is longer than the daily window (${describeWindow(window)}): ` +
      `starting at ${formatInstant(startAt, timeZone)}; it will overrun the window's end.`,
  };
}

/** "2026-12-01 02:00 Europe/Berlin" (with seconds when they are not zero). */
export function formatInstant(at: number, timeZone: string): string {
  const p = zonedParts(timeZone, at);
  const pad = (n: number) => String(n).padStart(2, '0');
  const seconds = p.second ? `:${pad(p.second)}` : '';
  return `${p.year}-${pad(p.month)}-${pad(p.day)} ${pad(p.hour)}:${pad(p.minute)}${seconds} ${timeZone}`;
}

interface ZonedParts {
  year: number;
  month: number;
  day: number;
  hour: number;
  minute: number;
  second: number;
}

function zonedParts(timeZone: string, at: number): ZonedParts {
  const format = new Intl.DateTimeFormat('en-US', {
    timeZone,
    hourCycle: 'h23',
    year: 'numeric',
    month: 'numeric',
    day: 'numeric',
    hour: 'numeric',
    minute: 'numeric',
    second: 'numeric',
  });
  const parts = Object.fromEntries(format.formatToParts(new Date(at)).map((x) => [x.type, x.value]));
  return {
    year: Number(parts.year),
    month: Number(parts.month),
    day: Number(parts.day),
    hour: Number(parts.hour) % 24,
    minute: Number(parts.minute),
    second: Number(parts.second),
  };
}

/** How far the zone's wall clock is ahead of UTC at `at`. */
function zoneOffsetMs(timeZone: string, at: number): number {
  const p = zonedParts(timeZone, at);
  const wall = Date.UTC(p.year, p.month - 1, p.day, p.hour, p.minute, p.second);
  return wall - (at - (((at % 1000) + 1000) % 1000));
}

/**
 * The instant a wall-clock time in the zone stands for. The zone's offsets half a day either side are the
 * candidates (a zone changes its offset at most once in a day). A time that occurs twice (autumn) is its
 * first occurrence; a time a DST gap skips (spring) is the end of the gap — never earlier than the wall
 * time asked for, whichever side of UTC the zone is.
 */
function zonedToEpoch(timeZone: string, wall: number): number {
  const halfDay = 12 * 3_600_000;
  const candidates = [
    wall - zoneOffsetMs(timeZone, wall - halfDay),
    wall - zoneOffsetMs(timeZone, wall + halfDay),
  ];
  const exact = candidates.filter((at) => at + zoneOffsetMs(timeZone, at) === wall);
  return exact.length > 0 ? Math.min(...exact) : Math.max(...candidates);
}

function secondsOfDay(time: string): number {
  const [h, m, s] = time.split(':').map(Number);
  return (h * 60 + m) * 60 + (s ?? 0);
}

/** The daily windows that start from the day before `now` (in the zone) to three days after. */
function dailyWindows(
  daily: NonNullable<DowntimeWindow['daily']>,
  now: number,
): { start: number; end: number }[] {
  const today = zonedParts(daily.timeZone, now);
  const from = secondsOfDay(daily.from);
  const to = secondsOfDay(daily.to);
  const windows = [];
  for (let k = -1; k <= 3; k += 1) {
    const midnight = Date.UTC(today.year, today.month - 1, today.day + k);
    const start = zonedToEpoch(daily.timeZone, midnight + from * 1000);
    const endDay = to > from ? midnight : midnight + 86_400_000;
    const end = zonedToEpoch(daily.timeZone, endDay + to * 1000);
    windows.push({ start, end });
  }
  return windows;
}
