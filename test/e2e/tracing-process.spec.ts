/**
 * Tracing in the real server process (no jest module system in between): off, not one
 * OpenTelemetry SDK module is loaded; on, spans reach a collector and the ones still batched
 * are flushed by the SIGTERM shutdown.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative as relativePath } from 'node:path';
import { FIXTURE_MODELS } from '../harness/app';
import { compiledMain } from '../harness/compiled-server';
import { OtlpReceiver } from '../harness/otlp-receiver';
import { ROOT, startServerProcess } from '../harness/process';

jest.setTimeout(90_000);

/** Boots the app in a fresh Node process, serves a few requests, prints the modules loaded. */
const PROBE = `
require('reflect-metadata');
const { loadConfig } = require('./src/infra/config/app.config');
const { createLogger } = require('./src/infra/logging/logger');
const { createApp } = require('./src/server');
(async () => {
  const config = loadConfig({
    DATABASE_URL: 'pglite://memory', MODELS_FILE: process.argv[1], ADMIN_TOKEN: 'a'.repeat(40),
    DATA_DIR: require('node:os').tmpdir(), BACKEND_PROBE_INTERVAL_MS: '0', LOG_LEVEL: 'silent',
  });
  const app = await createApp(config, createLogger('silent'));
  await app.listen(0, '127.0.0.1');
  const base = 'http://127.0.0.1:' + app.getHttpServer().address().port;
  const statuses = [];
  for (const path of ['/healthz', '/readyz', '/v1/models']) statuses.push((await fetch(base + path)).status);
  await app.close();
  const loaded = Object.keys(require.cache).filter((file) => /@opentelemetry|[\\\\/]src[\\\\/]infra[\\\\/]tracing[\\\\/]/.test(file));
  process.stdout.write(JSON.stringify({ statuses, loaded }));
})().catch((error) => { console.error(error); process.exit(1); });
`;

describe('tracing in the server process', () => {
  it('off: loads no OpenTelemetry SDK module (only our no-op and what prom-client brings)', () => {
    // The suite's compiled build of src/ (what dist/ holds), run from its own directory.
    const build = dirname(dirname(compiledMain()));
    const run = spawnSync(process.execPath, ['-e', PROBE, FIXTURE_MODELS], {
      cwd: build,
      env: { PATH: process.env.PATH ?? '' },
      encoding: 'utf8',
      timeout: 60_000,
    });
    expect(run.stderr).toBe('');
    const { statuses, loaded } = JSON.parse(run.stdout) as { statuses: number[]; loaded: string[] };
    expect(statuses).toEqual([200, 200, 401]);
    const relative = loaded.map((file) =>
      file.startsWith(build) ? relativePath(build, file) : relativePath(ROOT, file),
    );
    // prom-client depends on @opentelemetry/api (its exemplars): the API alone, never an SDK part.
    const sdk = relative.filter((file) => !file.startsWith(join('node_modules', '@opentelemetry', 'api') + '/'));
    expect(sdk.sort()).toEqual(
      [
        join('src', 'infra', 'tracing', 'trace-attributes.js'),
        join('src', 'infra', 'tracing', 'trace-context.js'),
        join('src', 'infra', 'tracing', 'tracing.module.js'),
        join('src', 'infra', 'tracing', 'tracing.js'),
      ].sort(),
    );
  });

  it('on: exports spans to the collector and flushes the last ones on SIGTERM', async () => {
    const receiver = await OtlpReceiver.http();
    try {
      const server = await startServerProcess({
        DATABASE_URL: 'pglite://memory',
        MODELS_FILE: FIXTURE_MODELS,
        ADMIN_TOKEN: 'a'.repeat(40),
        DATA_DIR: mkdtempSync(join(tmpdir(), 'llm-tracing-')),
        BACKEND_PROBE_INTERVAL_MS: '0',
        OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
        OTEL_SERVICE_NAME: 'llm-process-test',
      });
      expect((await fetch(`${server.base}/v1/models`)).status).toBe(401);
      server.proc.kill('SIGTERM');
      expect(await server.exited).toEqual({ code: 0, signal: null });
      const names = receiver.spans.map((span) => span.name);
      expect(names).toContain('GET /v1/models');
      expect(names).toContain('GET /healthz');
      expect(receiver.spans.every((span) => span.resource['service.name'] === 'llm-process-test')).toBe(true);
      const lines = server
        .stdout()
        .split('\n')
        .filter((line) => line.includes('"msg":"request"'))
        .map((line) => JSON.parse(line) as { route: string | null; trace_id?: string });
      const models = lines.find((line) => line.route === '/v1/models');
      expect(receiver.spans.find((span) => span.name === 'GET /v1/models')!.traceId).toBe(models?.trace_id);
    } finally {
      await receiver.close();
    }
  });
});
