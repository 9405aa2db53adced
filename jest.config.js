const { availableParallelism } = require('node:os');

module.exports = {
  testEnvironment: 'node',
  // e2e files boot the whole app (PGlite, migrations, sometimes llama.cpp): generous under CI load.
  testTimeout: 30_000,
  // One worker more than cores: many files wait on child processes and sockets, so a spare
  // worker fills the idle time (2 cores: 148 s with 2 workers, 112 s with 3, 108-120 s with 4).
  maxWorkers: availableParallelism() + 1,
  transform: { '^.+\\.(t|j|mj|cj)s$': ['@swc/jest'] },
  // @opentelemetry: its OTLP exporters load node:http with import(), which jest's VM only runs
  // once transformed to require().
  transformIgnorePatterns: ['/node_modules/(?!(@nestjs|@opentelemetry|file-type|node-llama-cpp|@electric-sql|strtok3|token-types|uint8array-extras|@tokenizer)/)'],
  globalSetup: '<rootDir>/test/harness/global-setup.ts',
  // Every test lives under test/ (unit tests included), beside the harness and fakes they share.
  testMatch: ['<rootDir>/test/**/*.spec.ts', '<rootDir>/test/**/*.e2e-spec.ts'],
};
