// `npm test`: unit tests and the in-process API suite (PGlite, in-process stores, fake backends).
// Everything lives under test/ beside the harness and fakes it shares; test/e2e/ is the other
// layer (jest.e2e.config.js).
const base = require('./jest.base');

module.exports = {
  ...base,
  globalSetup: '<rootDir>/test/harness/global-setup.ts',
  testMatch: ['<rootDir>/test/**/*.spec.ts', '<rootDir>/test/**/*.e2e-spec.ts'],
  testPathIgnorePatterns: ['/node_modules/', '<rootDir>/test/e2e/'],
};
