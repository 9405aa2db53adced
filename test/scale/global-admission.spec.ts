/**
 * Global admission (issue 28, API.md "Scheduling"): with Redis, an upstream's `max_in_flight`
 * holds across every replica. Three replicas share one GPU-like fake that records the most
 * requests it ever held at once; each replica alone would let 4 through, so without the leases
 * in Redis the fake sees up to 12. While Redis is down each replica counts alone.
 */
import request from 'supertest';
import { startTestApp, type TestApp } from '../harness/app';
import { describeServices } from '../harness/environment';
import { createKey } from '../harness/keys';
import { listenOnLoopback } from '../harness/listen';
import { OwnRedis } from '../harness/redis-server';
import { FakeGpu } from '../fakes/fake-gpu';

const MAX_IN_FLIGHT = 4;

function modelsYaml(gpu: FakeGpu, maxWaitMs = 30_000): string {
  return `
default_model: gpu
models:
  - name: gpu
    provider: vllm
    upstream_model: m
    base_url: ${gpu.url}
    cache_ttl_seconds: 0
    max_in_flight: ${MAX_IN_FLIGHT}
    queue: { max_length: 100, max_wait_ms: ${maxWaitMs} }
`;
}

async function burst(targets: string[], key: string, count: number): Promise<number[]> {
  const responses = await Promise.all(
    Array.from({ length: count }, (_, i) =>
      request(targets[i % targets.length])
        .post('/v1/generate')
        .set('X-API-Key', key)
        .send({ prompt: `request ${i}`, max_new_tokens: 4 }),
    ),
  );
  return responses.map((res) => res.status);
}

async function replicas(count: number, yaml: string, env: Record<string, string> = {}): Promise<TestApp[]> {
  // A loaded machine must not make Redis look down (each replica would then count alone).
  env = { DEFAULT_RPM: '100000', REDIS_TIMEOUT_MS: '2000', ...env };
  const first = await startTestApp({ modelsYaml: yaml, env });
  const rest = [];
  for (let i = 1; i < count; i += 1) {
    rest.push(await startTestApp({ modelsYaml: yaml, shareWith: first, env }));
  }
  return [first, ...rest];
}

describeServices('max_in_flight across three replicas', () => {
  let gpu: FakeGpu;
  let apps: TestApp[] = [];

  beforeAll(async () => {
    // Each request holds its sequence ~150 ms: plenty of overlap between 36 requests.
    gpu = await FakeGpu.startGpu({ capacity: 100, missPrefillMs: 100, tokenDelayMs: 10 });
    apps = await replicas(3, modelsYaml(gpu));
  });

  afterAll(async () => {
    await Promise.all(apps.map((app) => app.close()));
    await gpu.close();
  });

  it('the upstream never holds more than max_in_flight, and all of it is used', async () => {
    const targets = await Promise.all(apps.map((app) => listenOnLoopback(app)));
    const { key } = await createKey(apps[0]);
    gpu.reset();
    const statuses = await burst(targets, key, 36);
    expect(statuses.filter((status) => status !== 200)).toEqual([]);
    expect(gpu.posts).toBe(36);
    expect(gpu.peakInFlight).toBe(MAX_IN_FLIGHT);
  });

  it('a waiter past max_wait_ms is a 503 overloaded, never sent', async () => {
    const short = await FakeGpu.startGpu({ capacity: 100, missPrefillMs: 600 });
    const few = await replicas(2, modelsYaml(short, 300));
    try {
      const targets = await Promise.all(few.map((app) => listenOnLoopback(app)));
      const { key } = await createKey(few[0]);
      const statuses = await burst(targets, key, 12);
      expect(statuses.filter((status) => status !== 200 && status !== 503)).toEqual([]);
      expect(statuses.filter((status) => status === 200).length).toBeGreaterThanOrEqual(MAX_IN_FLIGHT);
      expect(short.peakInFlight).toBeLessThanOrEqual(MAX_IN_FLIGHT);
      expect(short.posts).toBe(statuses.filter((status) => status === 200).length);
    } finally {
      await Promise.all(few.map((app) => app.close()));
      await short.close();
    }
  });
});

describeServices('max_in_flight while Redis is down', () => {
  it('each replica counts alone: nothing fails, each holds at most max_in_flight', async () => {
    const redis = await OwnRedis.start();
    const gpu = await FakeGpu.startGpu({ capacity: 100, missPrefillMs: 150 });
    const apps = await replicas(2, modelsYaml(gpu), { REDIS_URL: redis.url, READYZ_REQUIRE_REDIS: 'false' });
    try {
      const targets = await Promise.all(apps.map((app) => listenOnLoopback(app)));
      const { key } = await createKey(apps[0]);
      await redis.kill();
      gpu.reset();
      const statuses = await burst(targets, key, 24);
      expect(statuses.filter((status) => status !== 200)).toEqual([]);
      expect(gpu.peakInFlight).toBeGreaterThan(MAX_IN_FLIGHT);
      expect(gpu.peakInFlight).toBeLessThanOrEqual(2 * MAX_IN_FLIGHT);
    } finally {
      await Promise.all(apps.map((app) => app.close()));
      await gpu.close();
      await redis.kill();
    }
  });
});
