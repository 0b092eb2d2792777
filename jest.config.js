/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test', '<rootDir>/clients'],
  testMatch: ['**/*.test.ts'],
  // Checks that need a system package (Chromium) run with `npm run test:browser`, which
  // overrides these two patterns, so that `npm test` needs only Node and Redis.
  testPathIgnorePatterns: ['/node_modules/', '\\.browser\\.test\\.ts$'],
  transform: {
    // Type-checking is `npm run typecheck`'s job; tests only transpile, which is much faster.
    '^.+\\.ts$': ['ts-jest', { diagnostics: false }],
    // @badgateway/oauth2-client ships ES modules only; jest runs CommonJS, so it is transpiled.
    '^.+/node_modules/@badgateway/.+\\.js$': [
      'ts-jest',
      { diagnostics: false, tsconfig: { allowJs: true, module: 'commonjs' } },
    ],
  },
  transformIgnorePatterns: ['/node_modules/(?!@badgateway/)'],
  globalSetup: '<rootDir>/test/support/global-setup.ts',
  globalTeardown: '<rootDir>/test/support/global-teardown.ts',
  testTimeout: 30000,
  maxWorkers: 2,
};
