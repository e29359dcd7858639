// plan.cutover.window and downtimeEstimate: what validation accepts and refuses (naming the field), and
// the pure window arithmetic the workflow runs: daily windows in a zone (DST included), one-off windows.
import { BadInputError } from '../src/errors';
import { validatePlan } from '../src/plan/load';
import type { Plan, PlanInput } from '../src/plan/schema';
import {
  chooseDowntimeStart,
  describeWindow,
  estimateDowntime,
  formatInstant,
  type DowntimeWindow,
} from '../src/workflows/window';

function withCutover(cutover: Record<string, unknown>): PlanInput {
  return {
    platform: 'local',
    source: { handle: 'demo-pg14' },
    target: { handle: 'demo-pg17', version: '17' },
    cutover,
  } as PlanInput;
}

function problems(raw: unknown): string[] {
  try {
    validatePlan(raw);
  } catch (err) {
    expect(err).toBeInstanceOf(BadInputError);
    return (err as Error).message
      .split('\n')
      .slice(1)
      .map((line) => line.replace(/^ {2}- /, ''));
  }
  throw new Error('the plan was accepted');
}

const daily = (from: string, to: string, timeZone = 'Europe/Berlin'): DowntimeWindow => ({
  daily: { from, to, timeZone },
});
const at = (iso: string) => Date.parse(iso);

describe('plan.cutover.window validation', () => {
  it('accepts a one-off start (Z or offset), with or without an end, and a daily window', () => {
    for (const window of [
      { start: '2026-12-01T02:00:00Z' },
      { start: '2026-12-01T03:00+01:00', end: '2026-12-01T05:00:00+01:00' },
      { daily: { from: '02:00', to: '04:00', timeZone: 'Europe/Berlin' } },
      { daily: { from: '23:30', to: '01:00:30', timeZone: 'UTC' } },
    ]) {
      expect(validatePlan(withCutover({ window })).cutover.window).toEqual(window);
    }
    expect(validatePlan(withCutover({ downtimeEstimate: '90s' })).cutover.downtimeEstimate).toBe('90s');
  });

  it.each([
    [{ start: '2026-12-01T02:00:00' }, 'cutover.window.start: must be an ISO 8601 time with an offset or Z'],
    [{ start: '2026-13-01T02:00:00Z' }, 'cutover.window.start: must be an ISO 8601 time'],
    [{ start: 'tomorrow' }, 'cutover.window.start: must be an ISO 8601 time'],
    [
      { start: '2026-12-01T02:00:00Z', end: '2026-12-01T01:00:00Z' },
      'cutover.window.end: must be after start',
    ],
    [
      { daily: { from: '02:00', to: '04:00', timeZone: 'Mars/Olympus' } },
      'cutover.window.daily.timeZone: must be an IANA time zone',
    ],
    [{ daily: { from: '2:00', to: '04:00', timeZone: 'UTC' } }, 'cutover.window.daily.from: must be a time'],
    [{ daily: { from: '02:00', to: '24:00', timeZone: 'UTC' } }, 'cutover.window.daily.to: must be a time'],
    [{ daily: { from: '02:00', to: '02:00', timeZone: 'UTC' } }, 'cutover.window.daily.to: must differ'],
    [{ daily: { from: '02:00', timeZone: 'UTC' } }, 'cutover.window.daily.to: is required'],
    [{}, 'cutover.window: must have either start or daily'],
    [
      { start: '2026-12-01T02:00:00Z', daily: { from: '02:00', to: '04:00', timeZone: 'UTC' } },
      'cutover.window: must have either start or daily',
    ],
    [
      { daily: { from: '02:00', to: '04:00', timeZone: 'UTC' }, end: '2026-12-01T02:00:00Z' },
      'cutover.window.end: goes with start',
    ],
    [{ start: '2026-12-01T02:00:00Z', at: 'x' }, 'cutover.window.at: is not a known field'],
  ])('refuses %j, naming the field', (window, expected) => {
    expect(problems(withCutover({ window })).join('\n')).toContain(expected);
  });

  it('refuses a downtimeEstimate that is not a duration', () => {
    expect(problems(withCutover({ downtimeEstimate: '90 seconds' })).join('\n')).toContain(
      'cutover.downtimeEstimate: must be a duration',
    );
  });
});

describe('chooseDowntimeStart: daily windows', () => {
  // 2026-12-01 is in winter: Berlin is UTC+1, so 02:00-04:00 Berlin is 01:00-03:00 UTC.
  const window = daily('02:00', '04:00');

  it('waits for the next start when before the window', () => {
    expect(chooseDowntimeStart(window, at('2026-12-01T00:00:00Z'), 60_000)).toEqual({
      startAt: at('2026-12-01T01:00:00Z'),
      endsAt: at('2026-12-01T03:00:00Z'),
    });
  });

  it('starts at once inside the window when the estimate fits in what is left', () => {
    expect(chooseDowntimeStart(window, at('2026-12-01T01:30:00Z'), 60 * 60_000)).toEqual({
      startAt: at('2026-12-01T01:30:00Z'),
      endsAt: at('2026-12-01T03:00:00Z'),
    });
  });

  it('waits for the next day, with a warning, when the estimate does not fit in what is left', () => {
    const choice = chooseDowntimeStart(window, at('2026-12-01T02:30:00Z'), 60 * 60_000);
    expect(choice.startAt).toBe(at('2026-12-02T01:00:00Z'));
    expect(choice.warning).toContain('does not fit in what is left of the current window');
    expect(choice.warning).toContain('2026-12-02 02:00 Europe/Berlin');
  });

  it('after the window: tomorrow', () => {
    expect(chooseDowntimeStart(window, at('2026-12-01T05:00:00Z'), 1000).startAt).toBe(
      at('2026-12-02T01:00:00Z'),
    );
  });

  it('follows the zone across a DST change (Berlin: UTC+2 in summer)', () => {
    // 2026-03-29 is the spring change in the EU: 02:00-04:00 Berlin that night is 01:00-02:00 UTC.
    expect(chooseDowntimeStart(window, at('2026-03-28T12:00:00Z'), 1000).startAt).toBe(
      at('2026-03-29T01:00:00Z'),
    );
    expect(chooseDowntimeStart(window, at('2026-07-01T12:00:00Z'), 1000).startAt).toBe(
      at('2026-07-02T00:00:00Z'),
    );
  });

  it('handles a window across midnight', () => {
    const night = daily('23:00', '01:00', 'UTC');
    expect(chooseDowntimeStart(night, at('2026-12-02T00:30:00Z'), 10 * 60_000)).toEqual({
      startAt: at('2026-12-02T00:30:00Z'),
      endsAt: at('2026-12-02T01:00:00Z'),
    });
    expect(chooseDowntimeStart(night, at('2026-12-02T12:00:00Z'), 10 * 60_000).startAt).toBe(
      at('2026-12-02T23:00:00Z'),
    );
  });

  it('an estimate longer than the whole window starts at the beginning of a whole window, with a warning', () => {
    const choice = chooseDowntimeStart(window, at('2026-12-01T00:00:00Z'), 3 * 3_600_000);
    expect(choice.startAt).toBe(at('2026-12-01T01:00:00Z'));
    expect(choice.warning).toContain('is longer than the daily window (daily 02:00-04:00 Europe/Berlin)');
    // Inside a window that has begun: not its last minutes, the next whole one.
    expect(chooseDowntimeStart(window, at('2026-12-01T02:50:00Z'), 3 * 3_600_000).startAt).toBe(
      at('2026-12-02T01:00:00Z'),
    );
  });

  it('never starts before the window west of UTC either, on the spring-forward night', () => {
    // 2026-03-08 02:00 does not exist in New York (clocks go 01:59 EST → 03:00 EDT = 07:00Z).
    const ny = daily('02:00', '04:00', 'America/New_York');
    expect(chooseDowntimeStart(ny, at('2026-03-07T20:00:00Z'), 1000).startAt).toBe(
      at('2026-03-08T07:00:00Z'),
    );
    // An ordinary night: 02:00 EST is 07:00Z in winter, 02:00 EDT is 06:00Z in summer.
    expect(chooseDowntimeStart(ny, at('2026-01-10T20:00:00Z'), 1000).startAt).toBe(
      at('2026-01-11T07:00:00Z'),
    );
    expect(chooseDowntimeStart(ny, at('2026-07-10T20:00:00Z'), 1000).startAt).toBe(
      at('2026-07-11T06:00:00Z'),
    );
    // Santiago springs forward at midnight (2026-09-06 00:00 → 01:00, UTC-4 → UTC-3).
    const scl = daily('00:00', '02:00', 'America/Santiago');
    expect(chooseDowntimeStart(scl, at('2026-09-05T12:00:00Z'), 1000).startAt).toBe(
      at('2026-09-06T04:00:00Z'),
    );
    // Autumn: 01:30 happens twice in New York on 2026-11-01; the first one (EDT, 05:30Z) counts.
    const fall = daily('01:30', '03:00', 'America/New_York');
    expect(chooseDowntimeStart(fall, at('2026-10-31T20:00:00Z'), 1000).startAt).toBe(
      at('2026-11-01T05:30:00Z'),
    );
  });
});

describe('chooseDowntimeStart: one-off windows', () => {
  it('waits for the start, or starts at once when it is past', () => {
    const window = { start: '2026-12-01T02:00:00Z' };
    expect(chooseDowntimeStart(window, at('2026-12-01T00:00:00Z'), 1000)).toEqual({
      startAt: at('2026-12-01T02:00:00Z'),
    });
    expect(chooseDowntimeStart(window, at('2026-12-01T05:00:00Z'), 1000)).toEqual({
      startAt: at('2026-12-01T05:00:00Z'),
    });
  });

  it('refuses, before any downtime, when the estimate overruns the end or the window has passed', () => {
    const window = { start: '2026-12-01T02:00:00Z', end: '2026-12-01T03:00:00Z' };
    const choice = chooseDowntimeStart(window, at('2026-12-01T00:00:00Z'), 2 * 3_600_000);
    expect(choice.refusal).toContain('does not fit before the window ends at 2026-12-01 03:00 UTC');
    expect(choice.refusal).toContain('the services were not stopped');
    const late = chooseDowntimeStart(window, at('2026-12-01T04:00:00Z'), 1000);
    expect(late.refusal).toContain('ended at 2026-12-01 03:00 UTC');
    expect(chooseDowntimeStart(window, at('2026-12-01T01:00:00Z'), 1000)).toEqual({
      startAt: at('2026-12-01T02:00:00Z'),
      endsAt: at('2026-12-01T03:00:00Z'),
    });
  });
});

describe('estimateDowntime and the words', () => {
  const plan = (cutover: Record<string, unknown> = {}): Plan =>
    validatePlan({
      ...withCutover(cutover),
      services: [{ app: 'shop', service: 'cmd' }],
      config: [{ app: 'shop', variable: 'DB_URL' }],
    });

  it("uses the plan's estimate when given", () => {
    expect(estimateDowntime(plan({ downtimeEstimate: '90s' }), 1e12)).toEqual({
      ms: 90_000,
      basis: 'plan.cutover.downtimeEstimate 90s',
    });
  });

  it('else the size at 10 MiB/s plus the allowances (local: 2s per scale, 2s per config:set)', () => {
    expect(estimateDowntime(plan(), 100 * 1024 * 1024).ms).toBe(10_000 + 2 * 2_000 + 2_000);
    expect(estimateDowntime(plan(), undefined)).toMatchObject({ ms: 6_000 });
    expect(estimateDowntime(plan(), undefined).basis).toContain('source size is unknown');
  });

  it('describes windows and instants in their zone', () => {
    expect(describeWindow(daily('02:00', '04:00'))).toBe('daily 02:00-04:00 Europe/Berlin');
    expect(describeWindow({ start: '2026-12-01T03:00:00+01:00' })).toBe('from 2026-12-01 02:00 UTC');
    expect(formatInstant(at('2026-12-01T01:00:00Z'), 'Europe/Berlin')).toBe('2026-12-01 02:00 Europe/Berlin');
    expect(formatInstant(at('2026-12-01T01:00:05Z'), 'UTC')).toBe('2026-12-01 01:00:05 UTC');
  });
});
