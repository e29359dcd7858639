/** @type {import('jest').Config} */
// execa 9 and its dependencies ship ESM only; Jest's CommonJS runtime needs them transformed.
const esmOnly = [
  'execa',
  '@sindresorhus',
  'npm-run-path',
  'path-key',
  'unicorn-magic',
  'figures',
  'is-unicode-supported',
  'get-stream',
  'human-signals',
  'is-stream',
  'is-plain-obj',
  'pretty-ms',
  'parse-ms',
  'strip-final-newline',
  'yoctocolors',
];
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  transform: {
    '^.+\\.ts$': ['ts-jest', { isolatedModules: true }],
    '^.+\\.m?js$': 'babel-jest',
  },
  transformIgnorePatterns: [`/node_modules/(?!(${esmOnly.join('|')})/)`],
  globalSetup: '<rootDir>/test/global-setup.ts',
  globalTeardown: '<rootDir>/test/global-teardown.ts',
  testTimeout: 300_000,
  maxWorkers: 2,
};
