// `npm run test:scale` (scripts/test-scale.js starts the Redis Cluster and PgBouncer first): the
// services suite on them, and test/scale/ (its own layer: several replicas, workers, Sentinels).
// Left out here, and run by test:services on a plain Redis and a direct PostgreSQL: the round-trip
// count (it MONITORs one Redis; a cluster has three) and the e2e files whose subject is another
// program (the embedded engine, Chromium, Prometheus, the README's examples, the quickstart),
// which use neither Redis nor a pooled PostgreSQL. The layers are defined in jest.base.js.
const { run, unit, e2e, scale } = require('./jest.base');

const notHere = ['test/round-trips\\.e2e-spec\\.ts'];
const e2eHere = ['crash-process', 'shutdown-process', 'config-exits'];

module.exports = {
  ...run,
  rootDir: __dirname,
  // Per-project testTimeout is not read when there are projects.
  testTimeout: 30_000,
  projects: [
    { ...unit, testPathIgnorePatterns: ['/node_modules/', ...notHere] },
    { ...e2e, testMatch: e2eHere.map((name) => `<rootDir>/test/e2e/${name}.spec.ts`) },
    scale,
  ],
};
