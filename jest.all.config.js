// Both test layers in one run (`npm run test:services`, CI's container leg): one pool of workers
// for both, each layer with its own global setup. The layers are defined in jest.base.js.
const { run, unit, e2e } = require('./jest.base');

module.exports = { ...run, rootDir: __dirname, projects: [unit, e2e] };
