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
  // Two cores: the end-to-end suites run real PostgreSQL clusters and a dev server beside Jest.
  maxWorkers: 2,
};
