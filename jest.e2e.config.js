// `npm run test:e2e`: tests whose subject is a process or another program: the server started as
// a child process (quickstart, README examples, shutdown, crash, config exits, tracing), the
// embedded engine, Chromium and Prometheus.
const base = require('./jest.base');

module.exports = {
  ...base,
  globalSetup: '<rootDir>/test/harness/global-setup-e2e.ts',
  testMatch: ['<rootDir>/test/e2e/**/*.spec.ts'],
};
