// Shared by the two test layers: jest.config.js (`npm test`: unit and in-process API tests) and
// jest.e2e.config.js (`npm run test:e2e`: tests whose subject is a process or another program).
const { availableParallelism } = require('node:os');

module.exports = {
  rootDir: __dirname,
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
  // Every run ends with its ten slowest files, so a slow one is seen when it comes in.
  reporters: ['default', '<rootDir>/test/harness/slowest-files-reporter.js'],
};
