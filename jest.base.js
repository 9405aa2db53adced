// The two test layers, shared by jest.config.js (`npm test`: unit and in-process API tests),
// jest.e2e.config.js (`npm run test:e2e`: tests whose subject is a process or another program)
// and jest.all.config.js (both at once: `npm run test:services`, the container leg of CI).
const { availableParallelism } = require('node:os');

/** What every project shares. */
const shared = {
  rootDir: __dirname,
  testEnvironment: 'node',
  // e2e files boot the whole app (PGlite, migrations, sometimes llama.cpp): generous under CI load.
  testTimeout: 30_000,
  transform: { '^.+\\.(t|j|mj|cj)s$': ['@swc/jest'] },
  // @opentelemetry: its OTLP exporters load node:http with import(), which jest's VM only runs
  // once transformed to require().
  transformIgnorePatterns: ['/node_modules/(?!(@nestjs|@opentelemetry|file-type|node-llama-cpp|@electric-sql|strtok3|token-types|uint8array-extras|@tokenizer)/)'],
};

/** Options Jest takes only for a whole run, not per project. */
exports.run = {
  // One worker more than cores: many files wait on child processes and sockets, so a spare
  // worker fills the idle time (2 cores: 148 s with 2 workers, 112 s with 3, 108-120 s with 4).
  maxWorkers: availableParallelism() + 1,
  // Every run ends with its ten slowest files, so a slow one is seen when it comes in.
  reporters: ['default', '<rootDir>/test/harness/slowest-files-reporter.js'],
};

exports.unit = {
  ...shared,
  displayName: 'unit',
  globalSetup: '<rootDir>/test/harness/global-setup.ts',
  // Everything under test/ but test/e2e/ (a negated match, so a --testPathIgnorePatterns given on
  // the command line, which replaces the configured one, cannot let the e2e layer in).
  testMatch: ['<rootDir>/test/**/*.spec.ts', '<rootDir>/test/**/*.e2e-spec.ts', '!**/test/e2e/**', '!**/test/scale/**'],
};

exports.e2e = {
  ...shared,
  displayName: 'e2e',
  globalSetup: '<rootDir>/test/harness/global-setup-e2e.ts',
  testMatch: ['<rootDir>/test/e2e/**/*.spec.ts'],
};

/** test/scale/: several server processes, Sentinels, workers (npm run test:scale only). */
exports.scale = {
  ...shared,
  displayName: 'scale',
  globalSetup: '<rootDir>/test/harness/global-setup-e2e.ts',
  testMatch: ['<rootDir>/test/scale/**/*.spec.ts'],
  testTimeout: 120_000,
};
