import { formatDuration, parseDuration } from '../src/lib/duration';

test('parses the ms notation Temporal timers accept', () => {
  expect(parseDuration('30m')).toBe(1_800_000);
  expect(parseDuration('7d')).toBe(604_800_000);
  expect(parseDuration('1.5h')).toBe(5_400_000);
  expect(parseDuration('0s')).toBeUndefined();
  expect(parseDuration('soon')).toBeUndefined();
  expect(parseDuration('1h30m')).toBeUndefined();
  expect(parseDuration('366d')).toBe(366 * 86_400_000);
  expect(parseDuration('999999999d')).toBeUndefined();
});

test('formats without rounding up into an impossible 60th second or minute', () => {
  expect(formatDuration(999)).toBe('999ms');
  expect(formatDuration(1500)).toBe('1.5s');
  expect(formatDuration(3_599_700)).toBe('1h0m');
  expect(formatDuration(3_599_400)).toBe('59m59s');
  expect(formatDuration(119_600)).toBe('2m0s');
  expect(formatDuration(90 * 60_000)).toBe('1h30m');
});
