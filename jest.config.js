// `npm test`: unit tests and the in-process API suite (PGlite, in-process stores, fake backends).
// Everything lives under test/ beside the harness and fakes it shares; test/e2e/ is the other
// layer (jest.e2e.config.js). The layers are defined in jest.base.js.
const { run, unit } = require('./jest.base');

module.exports = { ...run, ...unit };
