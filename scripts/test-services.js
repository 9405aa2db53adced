#!/usr/bin/env node
// Runs both test layers (jest.config.js: unit and in-process API; jest.e2e.config.js: processes
// and programs) against real PostgreSQL and Redis (DATABASE_URL / REDIS_URL, defaulting to the
// local services). Each test file gets its own schema and Redis key prefix.
const { spawnSync } = require('node:child_process');
const { join } = require('node:path');
const net = require('node:net');

const env = {
  ...process.env,
  DATABASE_URL: process.env.DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/test',
  REDIS_URL: process.env.REDIS_URL || 'redis://127.0.0.1:6379',
};

function reachable(url) {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const socket = net.connect({ host: hostname, port: Number(port) }, () => {
      socket.end();
      resolve(true);
    });
    socket.on('error', () => resolve(false));
    socket.setTimeout(2000, () => {
      socket.destroy();
      resolve(false);
    });
  });
}

(async () => {
  for (const name of ['DATABASE_URL', 'REDIS_URL']) {
    if (!(await reachable(env[name]))) {
      console.error(
        `test:services: ${name} (${new URL(env[name]).host}) is not reachable; start PostgreSQL and Redis first.`,
      );
      process.exit(1);
    }
  }
  const jest = join(__dirname, '..', 'node_modules', 'jest', 'bin', 'jest.js');
  const layers = ['--config', 'jest.all.config.js'];
  const result = spawnSync(process.execPath, [jest, ...layers, ...process.argv.slice(2)], {
    env,
    stdio: 'inherit',
    cwd: join(__dirname, '..'),
  });
  process.exit(result.status ?? 1);
})();
