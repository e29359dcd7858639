// ESLint flat config: `npm run lint`.
const { builtinModules } = require('node:module');
const js = require('@eslint/js');
const tseslint = require('typescript-eslint');
const { defineConfig, globalIgnores } = require('eslint/config');

// Workflow code runs in Temporal's deterministic sandbox and is replayed from history: anything that reads the
// clock, the disk, the network or the environment would make a replay diverge, and the bundler rejects it.
const determinism =
  'Workflow code must be deterministic and runs in a sandbox without Node APIs: do the I/O in an activity ' +
  '(src/activities) and call it through proxyActivities.';

const nodeOnlyPackages = [
  '@temporalio/activity',
  '@temporalio/client',
  '@temporalio/worker',
  '@temporalio/testing',
];

// The JavaScript files run on Node as CommonJS: what this very Node process has as globals (setTimeout,
// Buffer, URL...) plus the module wrapper's variables, without depending on the `globals` package.
const nodeGlobals = Object.fromEntries(
  [
    ...Object.getOwnPropertyNames(globalThis).filter((name) => /^[A-Za-z_$][\w$]*$/.test(name)),
    'require',
    'module',
    'exports',
    '__dirname',
    '__filename',
  ].map((name) => [name, 'readonly']),
);

module.exports = defineConfig([
  globalIgnores(['node_modules/', 'dist/', '.cache/', 'coverage/']),
  js.configs.recommended,
  tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: __dirname } },
    // The few type-aware rules worth their cost: an unawaited promise in a workflow or an activity is a
    // silent bug (a step that never ran, an error nobody sees).
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/await-thenable': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
    },
  },
  {
    // Config files and the bin shim are CommonJS scripts for Node.
    files: ['**/*.js'],
    languageOptions: { sourceType: 'commonjs', globals: nodeGlobals },
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
  {
    files: ['src/workflows/**/*.ts'],
    rules: {
      // The TypeScript variant lets `import type` through: types are erased and never reach the sandbox.
      '@typescript-eslint/no-restricted-imports': [
        'error',
        {
          paths: [
            ...builtinModules.map((name) => ({ name, message: determinism, allowTypeImports: true })),
            ...nodeOnlyPackages.map((name) => ({ name, message: determinism, allowTypeImports: true })),
            { name: 'pg', message: determinism, allowTypeImports: true },
            { name: 'execa', message: determinism, allowTypeImports: true },
          ],
          patterns: [
            { group: ['node:*'], message: determinism, allowTypeImports: true },
            {
              group: ['../activities/*', '!../activities/contract'],
              message: `${determinism} Import only the types of src/activities/contract.ts.`,
              allowTypeImports: true,
            },
          ],
        },
      ],
    },
  },
]);
