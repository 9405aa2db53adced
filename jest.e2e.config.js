// `npm run test:e2e`: tests whose subject is a process or another program: the server started as
// a child process (quickstart, README examples, shutdown, crash, config exits, tracing), the
// embedded engine, Chromium and Prometheus. The layers are defined in jest.base.js.
const { run, e2e } = require('./jest.base');

module.exports = { ...run, ...e2e };
