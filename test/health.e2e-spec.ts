/**
 * /healthz and /readyz (the seed's test_health) and graceful shutdown: liveness touches
 * nothing; readiness checks the database, Redis and every required model with cheap probes,
 * each bounded by READINESS_TIMEOUT_MS, names what fails, recovers when it comes back, and
 * answers 503 at once when shutdown begins while in-flight requests still complete.
 */
import { request as httpRequest } from 'node:http';
import { connect } from 'node:net';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DataSource } from 'typeorm';
import { loadConfig } from '../src/infra/config/app.config';
import { dataSourceOptions } from '../src/infra/database/data-source';
import { createLogger } from '../src/infra/logging/logger';
import { type RunningServer, startServer } from '../src/server';
import { FIXTURE_MODELS, startTestApp, type TestApp, useTestTemplate } from './harness/app';
import { describeInProcess, isRemote, TEST_ADMIN_TOKEN } from './harness/environment';
import { parseExposition, sampleValue } from './harness/prometheus';
import { hasRedisServer, OwnRedis } from './harness/redis-server';
import { sseEvents } from './harness/sse';
import { closedPortUrl } from './fakes/fake-server';
import { FakeVllm } from './fakes/fake-vllm';

jest.setTimeout(30_000);

const READINESS_TIMEOUT_MS = 300;
/** Generous: a hanging check must be answered long before this, at READINESS_TIMEOUT_MS. */
const ANSWER_BOUND_MS = READINESS_TIMEOUT_MS * 10;

/** Polls GET /readyz until it answers `status` (Redis reconnects on its own schedule). */
async function readyzUntil(app: TestApp, status: number, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const res = await app.http().get('/readyz').timeout(ANSWER_BOUND_MS);
    if (res.status === status || Date.now() > deadline) return res;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe('GET /healthz and GET /readyz', () => {
  let app: TestApp;
  let vllm: FakeVllm | null = null;
  let redis: OwnRedis | null = null;
  let closed = '';

  beforeAll(async () => {
    if (isRemote) {
      app = await startTestApp();
      return;
    }
    vllm = await FakeVllm.start();
    closed = await closedPortUrl();
    // A private redis-server, so the test can kill it (never the shared one).
    if (hasRedisServer) redis = await OwnRedis.start();
    app = await startTestApp({
      env: { READINESS_TIMEOUT_MS: String(READINESS_TIMEOUT_MS), ...(redis ? { REDIS_URL: redis.url } : {}) },
      modelsYaml: `default_model: mock-a
models:
  - name: mock-a
    provider: mock
    required: true
  - name: optional-m
    provider: vllm
    upstream_model: m
    base_url: ${closed}
  - name: vllm-m
    provider: vllm
    upstream_model: m
    required: true
    upstreams:
      - base_url: ${closed}
      - base_url: ${vllm.url}
`,
    });
  });
  afterAll(async () => {
    await app?.close();
    await vllm?.close();
    await redis?.kill();
  });

  it('/healthz is 200 {"status":"ok"} without authentication', async () => {
    const res = await app.http().get('/healthz');
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ status: 'ok' });
  });

  it('/readyz is 200 with the Terminus body when everything answers, without authentication', async () => {
    const res = await app.http().get('/readyz');
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ status: 'ok', info: { database: { status: 'up' } }, error: {} });
    expect(res.body.details.database.status).toBe('up');
  });

  describeInProcess(
    'with fake backends and dependencies that fail',
    'needs fake backends, its own Redis and the app database',
    () => {
      const vllmLabel = (): string => new URL(vllm!.url).host;
      const closedLabel = (): string => new URL(closed).host;

      afterEach(() => vllm!.reset());

      async function backendUp(model: string, upstream: string): Promise<number | undefined> {
        const res = await app.http().get('/metrics');
        return sampleValue(parseExposition(res.text), 'llm_backend_up', { model, upstream });
      }

      it('checks the database, Redis and every required model (one ready upstream is enough), not optional models', async () => {
        const res = await app.http().get('/readyz');
        expect(res.status).toBe(200);
        expect(res.body.status).toBe('ok');
        const expected = ['database', 'model:mock-a', 'model:vllm-m', ...(redis || app.config!.redis ? ['redis'] : [])];
        expect(Object.keys(res.body.details).sort()).toEqual(expected.sort());
        // Upstreams by their position in models.yaml, with the probe and the circuit breaker: no host or port.
        expect(res.body.details['model:vllm-m']).toEqual({
          status: 'up',
          upstreams: [
            { upstream: 0, probe: 'down: unreachable', breaker: 'closed' },
            { upstream: 1, probe: 'up', breaker: 'closed' },
          ],
        });
        expect(JSON.stringify(res.body)).not.toContain(vllmLabel());
        // The cheap probe, never a generation.
        const calls = vllm!.requests.map((r) => `${r.method} ${r.path}`);
        expect(calls.length).toBeGreaterThan(0);
        expect(new Set(calls)).toEqual(new Set(['GET /health']));
        expect(await backendUp('vllm-m', vllmLabel())).toBe(1);
        expect(await backendUp('vllm-m', closedLabel())).toBe(0);
      });

      it('a hanging backend gives 503 naming the model within READINESS_TIMEOUT_MS, and 200 once it is back', async () => {
        vllm!.setHealth('hang');
        const down = await app.http().get('/readyz').timeout(ANSWER_BOUND_MS);
        expect(down.status).toBe(503);
        expect(down.body.status).toBe('error');
        expect(Object.keys(down.body.error)).toEqual(['model:vllm-m']);
        expect(down.body.error['model:vllm-m']).toEqual({
          status: 'down',
          message: 'no upstream is ready',
          upstreams: [
            { upstream: 0, probe: 'down: unreachable', breaker: 'closed' },
            { upstream: 1, probe: `down: timeout of ${READINESS_TIMEOUT_MS}ms exceeded`, breaker: 'closed' },
          ],
        });
        expect(down.body.info).toMatchObject({ database: { status: 'up' }, 'model:mock-a': { status: 'up' } });
        expect(await backendUp('vllm-m', vllmLabel())).toBe(0);

        vllm!.setHealth(200);
        const up = await app.http().get('/readyz');
        expect(up.status).toBe(200);
        expect(await backendUp('vllm-m', vllmLabel())).toBe(1);
      });

      it('a backend answering its health endpoint with an error is not ready, and no URL leaks', async () => {
        vllm!.setHealth(503);
        const res = await app.http().get('/readyz');
        expect(res.status).toBe(503);
        expect(res.body.error['model:vllm-m'].upstreams[1].probe).toMatch(/^down: answered with an error/);
        expect(JSON.stringify(res.body)).not.toContain('http://');
      });

      (hasRedisServer ? it : it.skip)(
        `Redis down gives 503 naming redis within the bound, and 200 after it restarts${hasRedisServer ? '' : ' [skipped: redis-server is not installed]'}`,
        async () => {
          await redis!.kill();
          const down = await readyzUntil(app, 503);
          expect(down.status).toBe(503);
          expect(Object.keys(down.body.error)).toEqual(['redis']);
          expect(down.body.info.database.status).toBe('up');

          await redis!.restart();
          const back = await readyzUntil(app, 200);
          expect(back.status).toBe(200);
          expect(back.body.details.redis.status).toBe('up');
        },
      );

      // Last: the database stays closed.
      it('the database down gives 503 naming the database, while /healthz stays 200', async () => {
        await app.app!.get(DataSource).destroy();

        const down = await app.http().get('/readyz').timeout(ANSWER_BOUND_MS);
        expect(down.status).toBe(503);
        expect(down.body.status).toBe('error');
        expect(Object.keys(down.body.error)).toEqual(['database']);
        expect(down.body.error.database).toEqual({
          status: 'down',
          message: expect.any(String),
          responseTime: expect.any(Number),
        });
        expect((await app.http().get('/healthz')).status).toBe(200);
      });
    },
  );
});

/**
 * A server started like main.ts does (real listener, real shutdown), on a free port, with its
 * embedded database in files under DATA_DIR (so a test can read it after the shutdown).
 */
async function startRealServer(
  env: Record<string, string> = {},
): Promise<{ server: RunningServer; base: string; dataDir: string }> {
  const dataDir = mkdtempSync(join(tmpdir(), 'llm-server-shutdown-'));
  const config = loadConfig({
    NODE_ENV: 'test',
    PORT: '0',
    HOST: '127.0.0.1',
    ADMIN_TOKEN: TEST_ADMIN_TOKEN,
    DATA_DIR: dataDir,
    MODELS_FILE: FIXTURE_MODELS,
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
    BACKEND_PROBE_INTERVAL_MS: '0',
    ...env,
  });
  useTestTemplate(config);
  const server = await startServer(config, createLogger(config.logLevel));
  return { server, base: `http://127.0.0.1:${server.port}`, dataDir: join(dataDir, 'pglite') };
}

async function createKeyAt(base: string): Promise<string> {
  const res = await fetch(`${base}/admin/keys`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${TEST_ADMIN_TOKEN}`, connection: 'close' },
    body: JSON.stringify({ name: 'shutdown test' }),
  });
  expect(res.status).toBe(201);
  return ((await res.json()) as { key: string }).key;
}

interface StreamedResponse {
  status: number;
  /** Resolves when the first body bytes arrived. */
  firstBytes: Promise<void>;
  /** The whole body, or the error that cut it. */
  done: Promise<{ body: string; error: Error | null; status: number }>;
}

function postStream(base: string, key: string, body: unknown): StreamedResponse {
  let onFirst: () => void = () => undefined;
  const firstBytes = new Promise<void>((resolve) => (onFirst = resolve));
  const result: StreamedResponse = {
    status: 0,
    firstBytes,
    done: Promise.resolve({ body: '', error: null, status: 0 }),
  };
  result.done = new Promise((resolve) => {
    let text = '';
    const req = httpRequest(`${base}/v1/generate`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-api-key': key },
    });
    req.on('response', (res) => {
      result.status = res.statusCode ?? 0;
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        text += chunk;
        onFirst();
      });
      res.on('end', () => resolve({ body: text, error: null, status: result.status }));
      res.on('error', (error) => resolve({ body: text, error, status: result.status }));
      res.on('aborted', () => resolve({ body: text, error: new Error('aborted'), status: result.status }));
    });
    req.on('error', (error) => {
      onFirst();
      resolve({ body: text, error, status: result.status });
    });
    req.end(JSON.stringify(body));
  });
  return result;
}

/** Sends a request's first header line now and the rest on `finish()`: a request arriving mid-shutdown. */
function partialRequest(base: string, path: string): Promise<{ finish: () => Promise<string> }> {
  const { port } = new URL(base);
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port: Number(port) }, () => {
      socket.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\n`);
      let text = '';
      socket.setEncoding('utf8');
      socket.on('data', (chunk: string) => (text += chunk));
      const closed = new Promise<string>((done) => socket.on('close', () => done(text)));
      resolve({
        finish: () => {
          socket.write('\r\n');
          return closed;
        },
      });
    });
    socket.on('error', reject);
  });
}

function connectionRefused(base: string): Promise<boolean> {
  const { port } = new URL(base);
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port: Number(port) }, () => {
      socket.destroy();
      resolve(false);
    });
    socket.on('error', (error: NodeJS.ErrnoException) => resolve(error.code === 'ECONNREFUSED'));
  });
}

describeInProcess('graceful shutdown', 'calls the shutdown of an in-process server', () => {
  it('turns /readyz 503 at once, refuses new connections, lets in-flight streams finish and cuts what runs past the grace', async () => {
    const { server, base, dataDir } = await startRealServer({ SHUTDOWN_GRACE_MS: '3000' });
    try {
      const key = await createKeyAt(base);
      // 20 words, one every 500 ms: still running when the 3 s grace period ends.
      const endless = postStream(base, key, {
        prompt: `[mock:slow:500][mock:echo] ${'word '.repeat(20)}`,
        stream: true,
        max_new_tokens: 64,
      });
      await endless.firstBytes;
      // 5 words, one every 100 ms: finishes well within the grace period.
      const slow = postStream(base, key, {
        prompt: '[mock:slow:100][mock:echo] one two three four five',
        stream: true,
      });
      await slow.firstBytes;
      const lateProbe = await partialRequest(base, '/readyz');

      const shutdown = server.shutdown('test');
      const probe = await lateProbe.finish();
      expect(probe).toMatch(/^HTTP\/1\.1 503 /);
      expect(probe).toMatch(/\r\nconnection: close\r\n/i);
      expect(JSON.parse(probe.slice(probe.indexOf('\r\n\r\n') + 4))).toMatchObject({
        status: 'shutting_down',
        error: { shutdown: { status: 'down' } },
      });
      expect(await connectionRefused(base)).toBe(true);

      const drained = await slow.done;
      expect(drained.error).toBeNull();
      expect(drained.status).toBe(200);
      const events = sseEvents(drained.body);
      expect(events.at(-1)).toBe('[DONE]');
      expect(events.at(-2)).toMatchObject({ done: true, output: 'one two three four five' });

      await expect(shutdown).resolves.toEqual({ cutOff: 1 });
      const cut = await endless.done;
      expect(cut.error).not.toBeNull();
      expect(sseEvents(cut.body)).not.toContain('[DONE]');
      // Idempotent: a second signal does not start a second shutdown.
      await expect(server.shutdown('again')).resolves.toEqual({ cutOff: 1 });
      // Both generations are in the ledger, the one cut at the end of the grace included (it
      // produced output, so it is billed), written before the database closed.
      const db = await new DataSource(dataSourceOptions({ kind: 'pglite', dataDir })).initialize();
      try {
        const [row] = (await db.query(
          'SELECT sum(requests) AS requests, sum(completion_tokens) AS tokens FROM key_usage_daily',
        )) as {
          requests: string | number;
          tokens: string | number;
        }[];
        expect(Number(row.requests)).toBe(2);
        expect(Number(row.tokens)).toBeGreaterThan(5);
      } finally {
        await db.destroy();
      }
    } finally {
      // Always stops the listening server, also when an expectation above failed (idempotent).
      await server.shutdown('test cleanup').catch(() => undefined);
    }
  });
});
