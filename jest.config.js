/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  transform: { '^.+\\.ts$': 'ts-jest' },
  // One Temporal dev server and one workflow bundle for the whole run.
  globalSetup: '<rootDir>/test/global-setup.ts',
  globalTeardown: '<rootDir>/test/global-teardown.ts',
  testTimeout: 300_000,
  // Two cores: the end-to-end suites run real PostgreSQL clusters and a dev server beside Jest.
  maxWorkers: 2,
};
