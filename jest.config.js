module.exports = {
  testEnvironment: 'node',
  // e2e files boot the whole app (PGlite, migrations, sometimes llama.cpp): generous under CI load.
  testTimeout: 30_000,
  // Every core: jest's default leaves one idle (a second core halves the suite here).
  maxWorkers: '100%',
  transform: { '^.+\\.(t|j|mj|cj)s$': ['@swc/jest'] },
  // @opentelemetry: its OTLP exporters load node:http with import(), which jest's VM only runs
  // once transformed to require().
  transformIgnorePatterns: ['/node_modules/(?!(@nestjs|@opentelemetry|file-type|node-llama-cpp|@electric-sql|strtok3|token-types|uint8array-extras|@tokenizer)/)'],
  globalSetup: '<rootDir>/test/harness/global-setup.ts',
  testMatch: ['<rootDir>/test/**/*.spec.ts', '<rootDir>/test/**/*.e2e-spec.ts', '<rootDir>/src/**/*.spec.ts'],
};
