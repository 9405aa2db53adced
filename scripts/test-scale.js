#!/usr/bin/env node
// `npm run test:scale` (README "Scaling out", docs/testing.md): the services suite (both layers)
// with its Redis a Redis Cluster of three masters and its PostgreSQL behind PgBouncer in
// transaction mode (each app migrating through DATABASE_MIGRATION_URL), plus test/scale/: two
// replicas migrating at once, three replicas sharing an upstream's max_in_flight, WORKERS=2, a
// Sentinel failover. The cluster and PgBouncer are started here on free ports
// (test/harness/scale-services.ts) in front of the machine's PostgreSQL (DATABASE_URL, default
// 127.0.0.1:5432/test) and stopped at the end; the plain Redis (REDIS_URL) stays for the tests
// that talk to one directly. Arguments go to Jest (file patterns, --ci).
require('@swc-node/register');
const { spawn } = require('node:child_process');
const { join } = require('node:path');
const { startPgBouncer, startRedisCluster } = require('../test/harness/scale-services');

const direct = process.env.DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/test';
const redisUrl = process.env.REDIS_URL || 'redis://127.0.0.1:6379';

(async () => {
  const started = Date.now();
  const cluster = await startRedisCluster();
  const bouncer = await startPgBouncer(direct);
  console.log(
    `test:scale: Redis Cluster ${cluster.nodes}, PgBouncer (transaction mode) 127.0.0.1:${bouncer.port} ` +
      `in front of ${new URL(direct).host} (${Date.now() - started} ms)`,
  );
  const jest = join(__dirname, '..', 'node_modules', 'jest', 'bin', 'jest.js');
  const child = spawn(process.execPath, [jest, '--config', 'jest.scale.config.js', ...process.argv.slice(2)], {
    cwd: join(__dirname, '..'),
    stdio: 'inherit',
    env: {
      ...process.env,
      DATABASE_URL: bouncer.urlFor(direct),
      DATABASE_MIGRATION_URL: direct,
      REDIS_URL: redisUrl,
      REDIS_CLUSTER_NODES: cluster.nodes,
    },
  });
  const stop = () => child.kill('SIGTERM');
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  const code = await new Promise((resolve) => child.on('exit', (status) => resolve(status ?? 1)));
  await Promise.all([cluster.stop(), bouncer.stop()]);
  process.exit(code);
})().catch((error) => {
  console.error(`test:scale: ${error.stack ?? error}`);
  process.exit(1);
});
