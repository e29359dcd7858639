/** @type {import('jest').Config} */
module.exports = {
  // Node, plus the Temporal SDK's log kept per test and printed only for a test that fails.
  testEnvironment: '<rootDir>/test/helpers/sdk-log-environment.ts',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  transform: { '^.+\\.ts$': 'ts-jest' },
  // One Temporal dev server and one workflow bundle for the whole run.
  globalSetup: '<rootDir>/test/global-setup.ts',
  globalTeardown: '<rootDir>/test/global-teardown.ts',
  // A bound for a test that hangs, not a budget: on two busy cores a real migration takes minutes.
  testTimeout: 900_000,
  // Two cores, but much of the suite waits on Temporal timers and heartbeat timeouts rather than computing:
  // a third worker fills those waits (4m35s against 5m34s for two, here); every wait has a generous bound.
  maxWorkers: 3,
};
