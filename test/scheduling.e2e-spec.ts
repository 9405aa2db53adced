/**
 * Scheduling for GPU backends (issue 17) against fakes that behave like GPU servers
 * (test/fakes/fake-gpu.ts): the fair queue in front of max_in_flight (priority classes first,
 * then deficit round robin across keys by weight), 503 overloaded when the queue is full or
 * max_wait_ms passes, a client leaving the queue, SSE heartbeats while waiting, per-key
 * max_concurrent (429), least_outstanding and vLLM-metrics-aware routing, and prefix affinity.
 * Orders are deterministic: max_in_flight 1 lets one request at a time reach the fake, so the
 * order the fake sees requests start is the order the gateway served its queue.
 */
import { request as httpRequest } from 'node:http';
import request from 'supertest';
import { Scheduler } from '../src/modules/scheduling/scheduler.service';
import { startTestApp, type TestApp } from './harness/app';
import { describeInProcess, describeServices } from './harness/environment';
import { adminAuth, createKey, type SeededKey } from './harness/keys';
import { listenOnLoopback, openPost } from './harness/listen';
import { parseExposition } from './harness/prometheus';
import { sleep, waitFor } from './fakes/fake-server';
import { FakeGpu } from './fakes/fake-gpu';

const SHARED_SYSTEM_PROMPT = 'You are a careful assistant who answers in one short sentence. '.repeat(6);

describeInProcess('scheduling for GPU backends', 'needs fake upstreams and the in-process scheduler', () => {
  let app: TestApp;
  let target: string;
  let scheduler: Scheduler;
  const fakes: Record<string, FakeGpu> = {};
  let tag = 0;
  const unique = (text: string) => `${text} #${(tag += 1)}`;

  beforeAll(async () => {
    for (const name of ['queued', 'short', 'plain', 'lo1', 'lo2', 'wt1', 'wt2', 'ml1', 'ml2', 'af1', 'af2', 'af3']) {
      fakes[name] = await FakeGpu.startGpu();
    }
    const upstreams = (...names: string[]) => names.map((name) => `      - base_url: ${fakes[name].url}`).join('\n');
    const yaml = `
default_model: queued
models:
  - name: queued
    provider: vllm
    upstream_model: m
    base_url: ${fakes.queued.url}
    cache_ttl_seconds: 0
    max_in_flight: 1
    queue: { max_length: 50, max_wait_ms: 10000 }
  - name: short
    provider: vllm
    upstream_model: m
    base_url: ${fakes.short.url}
    cache_ttl_seconds: 0
    max_in_flight: 1
    queue: { max_length: 1, max_wait_ms: 300 }
  - name: plain
    provider: vllm
    upstream_model: m
    base_url: ${fakes.plain.url}
    cache_ttl_seconds: 0
  - name: least
    provider: vllm
    upstream_model: m
    cache_ttl_seconds: 0
    upstreams:
${upstreams('lo1', 'lo2')}
  - name: weighted
    provider: vllm
    upstream_model: m
    cache_ttl_seconds: 0
    load_balancing: weighted
    upstreams:
${upstreams('wt1', 'wt2')}
  - name: engine-load
    provider: vllm
    upstream_model: m
    cache_ttl_seconds: 0
    upstream_metrics: true
    upstreams:
${upstreams('ml1', 'ml2')}
  - name: affinity
    provider: vllm
    upstream_model: m
    cache_ttl_seconds: 0
    load_balancing: prefix_affinity
    max_in_flight: 1
    queue: { max_length: 10, max_wait_ms: 10000 }
    breaker: { failures: 1, cooldown_ms: 60000 }
    upstreams:
${upstreams('af1', 'af2', 'af3')}
`;
    app = await startTestApp({ modelsYaml: yaml, env: { DEFAULT_RPM: '100000', SSE_HEARTBEAT_MS: '100' } });
    target = await listenOnLoopback(app);
    scheduler = app.app!.get(Scheduler);
  }, 30_000);

  afterAll(async () => {
    await app.close();
    await Promise.all(Object.values(fakes).map((fake) => fake.close()));
  });

  beforeEach(() => {
    for (const fake of Object.values(fakes)) fake.reset();
  });

  /** A generation as a real promise (supertest only sends on then()). */
  function generate(key: SeededKey, body: Record<string, unknown>): Promise<request.Response> {
    return new Promise((resolve, reject) =>
      app
        .http()
        .post('/v1/generate')
        .set('X-API-Key', key.key)
        .send({ max_new_tokens: 4, ...body })
        .then(resolve, reject),
    );
  }

  /**
   * Sends a request that will wait in `model`'s queue and returns once it does, with its answer
   * to come (wrapped: an async function cannot return a pending promise).
   */
  async function enqueue(
    model: string,
    key: SeededKey,
    prompt: string,
  ): Promise<{ answer: Promise<request.Response> }> {
    const before = scheduler.queued(model);
    const answer = generate(key, { model, prompt });
    await waitFor(() => scheduler.queued(model) === before + 1, 2000);
    return { answer };
  }

  /** A POST over a raw connection, recording when the response's status line arrived. */
  function rawPost(path: string, key: SeededKey, body: Record<string, unknown>) {
    let headersAt: number | null = null;
    const done = new Promise<{ status: number; text: string }>((resolve, reject) => {
      const req = httpRequest(`${target}${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-api-key': key.key },
      });
      req.on('response', (res) => {
        headersAt = Date.now();
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (text += chunk));
        res.on('end', () => resolve({ status: res.statusCode!, text }));
      });
      req.on('error', reject);
      req.end(JSON.stringify({ max_new_tokens: 4, ...body }));
    });
    return { done, headersAt: () => headersAt };
  }

  async function metricValue(name: string, labels: Record<string, string>): Promise<number> {
    const { samples } = parseExposition((await app.http().get('/metrics')).text);
    const sample = samples.find(
      (s) => s.name === name && Object.entries(labels).every(([key, value]) => s.labels[key] === value),
    );
    return sample?.value ?? NaN;
  }

  describe('the fair queue (max_in_flight 1)', () => {
    it('serves priority classes first: high, then normal, then low, whatever the arrival order', async () => {
      const low = await createKey(app, { priority: 'low' });
      const normal = await createKey(app, { priority: 'normal' });
      const high = await createKey(app, { priority: 'high' });
      const gpu = fakes.queued;
      gpu.pause();
      const blocker = generate(low, { model: 'queued', prompt: 'blocker' });
      await waitFor(() => gpu.started.length === 1);
      const waiting = [
        (await enqueue('queued', low, 'low-1')).answer,
        (await enqueue('queued', low, 'low-2')).answer,
        (await enqueue('queued', normal, 'normal-1')).answer,
        (await enqueue('queued', high, 'high-1')).answer,
      ];
      expect(await metricValue('llm_queue_length', { model: 'queued', priority: 'low' })).toBe(2);
      gpu.resume();
      const statuses = (await Promise.all([blocker, ...waiting])).map((res) => res.status);
      expect(statuses).toEqual([200, 200, 200, 200, 200]);
      expect(gpu.started).toEqual(['blocker', 'high-1', 'normal-1', 'low-1', 'low-2']);
      expect(await metricValue('llm_queue_wait_seconds_count', { model: 'queued', priority: 'high' })).toBe(1);
    });

    it('a flooding key gets its share and no more: requests of two equal keys alternate', async () => {
      const flood = await createKey(app);
      const light = await createKey(app);
      const gpu = fakes.queued;
      gpu.pause();
      const blocker = generate(flood, { model: 'queued', prompt: 'flood-0' });
      await waitFor(() => gpu.started.length === 1);
      const waiting: Promise<request.Response>[] = [];
      for (let i = 1; i <= 6; i += 1) waiting.push((await enqueue('queued', flood, `flood-${i}`)).answer);
      for (let i = 1; i <= 2; i += 1) waiting.push((await enqueue('queued', light, `light-${i}`)).answer);
      gpu.resume();
      await Promise.all([blocker, ...waiting]);
      // FIFO would serve flood-1..6 before light-1: the light key waited behind the flood.
      expect(gpu.started).toEqual([
        'flood-0',
        'flood-1',
        'light-1',
        'flood-2',
        'light-2',
        'flood-3',
        'flood-4',
        'flood-5',
        'flood-6',
      ]);
    });

    it('weights share a priority class: weight 3 gets three requests per round to weight 1', async () => {
      const heavy = await createKey(app, { weight: 1 });
      const favoured = await createKey(app, { weight: 3 });
      const gpu = fakes.queued;
      gpu.pause();
      const blocker = generate(heavy, { model: 'queued', prompt: 'h-0' });
      await waitFor(() => gpu.started.length === 1);
      const waiting: Promise<request.Response>[] = [];
      for (let i = 1; i <= 4; i += 1) waiting.push((await enqueue('queued', heavy, `h-${i}`)).answer);
      for (let i = 1; i <= 4; i += 1) waiting.push((await enqueue('queued', favoured, `f-${i}`)).answer);
      gpu.resume();
      await Promise.all([blocker, ...waiting]);
      expect(gpu.started).toEqual(['h-0', 'h-1', 'f-1', 'f-2', 'f-3', 'h-2', 'f-4', 'h-3', 'h-4']);
    });

    it('a client that leaves the queue frees its place at once, never reaches the backend and pays nothing', async () => {
      const other = await createKey(app);
      const leaver = await createKey(app, { monthly_quota: 100 });
      const gpu = fakes.short; // max_length 1
      gpu.pause();
      const blocker = generate(other, { model: 'short', prompt: unique('blocker') });
      await waitFor(() => gpu.started.length === 1);
      const post = openPost(target, '/v1/generate', { 'X-API-Key': leaver.key }, { model: 'short', prompt: 'leaver' });
      await waitFor(() => scheduler.queued('short') === 1, 2000);
      post.cut();
      await waitFor(() => scheduler.queued('short') === 0, 200);
      // Its place is free: the next request waits instead of finding the queue full.
      const next = (await enqueue('short', other, unique('next'))).answer;
      gpu.resume();
      expect((await blocker).status).toBe(200);
      expect((await next).status).toBe(200);
      expect(gpu.started).not.toContain('leaver');
      const view = await app
        .http()
        .get(`/admin/keys/${leaver.id}`)
        .set(...adminAuth());
      expect(view.body.usage).toMatchObject({ requests: 0, tokens: 0 });
    });

    it('a stream sends nothing while it waits in the queue; its heartbeats start once it is admitted', async () => {
      const key = await createKey(app);
      const gpu = fakes.queued;
      gpu.pause();
      const blocker = generate(key, { model: 'queued', prompt: unique('blocker') });
      await waitFor(() => gpu.started.length === 1);
      const sentAt = Date.now();
      const stream = rawPost('/v1/generate', key, { model: 'queued', prompt: unique('stream'), stream: true });
      await waitFor(() => scheduler.queued('queued') === 1, 2000);
      await sleep(600);
      expect(stream.headersAt()).toBeNull(); // queued: not even the status line
      // The blocker finishes; the stream is admitted and held by the engine (a fresh pause) for
      // 400 ms, with a heartbeat every 100 ms (a loaded machine may run the timer late: at least two).
      gpu.resume();
      gpu.pause();
      await waitFor(() => gpu.started.length === 2, 2000);
      await sleep(400);
      gpu.resume();
      const [res] = await Promise.all([stream.done, blocker]);
      expect(res.status).toBe(200);
      expect(stream.headersAt()! - sentAt).toBeGreaterThanOrEqual(600);
      const firstData = res.text.indexOf('data:');
      expect(res.text.slice(0, firstData)).toMatch(/^(: keep-alive\n\n){2,}$/);
      expect(res.text.trimEnd().endsWith('data: [DONE]')).toBe(true);
    });
  });

  describe('shedding: 503 overloaded with Retry-After', () => {
    it('when the queue is full, at once; when max_wait_ms passes, then; counted by reason', async () => {
      const key = await createKey(app);
      const gpu = fakes.short; // max_length 1, max_wait_ms 300
      const fullBefore = await metricValue('llm_requests_shed_total', { model: 'short', reason: 'queue_full' });
      const waitBefore = await metricValue('llm_requests_shed_total', { model: 'short', reason: 'max_wait' });
      gpu.pause();
      const blocker = generate(key, { model: 'short', prompt: unique('blocker') });
      await waitFor(() => gpu.started.length === 1);
      const startedAt = Date.now();
      const waiter = (await enqueue('short', key, unique('waiter'))).answer;
      const full = await generate(key, { model: 'short', prompt: unique('one too many') });
      expect(full.status).toBe(503);
      expect(full.body.error.code).toBe('overloaded');
      expect(full.body.error.message).toMatch(/queue .* is full/);
      expect(Number(full.headers['retry-after'])).toBeGreaterThanOrEqual(1);
      expect(Date.now() - startedAt).toBeLessThan(250);

      const timedOut = await waiter;
      expect(timedOut.status).toBe(503);
      expect(timedOut.body.error.code).toBe('overloaded');
      expect(timedOut.body.error.message).toMatch(/max_wait_ms/);
      expect(Number(timedOut.headers['retry-after'])).toBeGreaterThanOrEqual(1);
      expect(Date.now() - startedAt).toBeGreaterThanOrEqual(290);
      gpu.resume();
      expect((await blocker).status).toBe(200);
      expect(gpu.posts).toBe(1);
      expect(await metricValue('llm_requests_shed_total', { model: 'short', reason: 'queue_full' })).toBe(
        fullBefore + 1,
      );
      expect(await metricValue('llm_requests_shed_total', { model: 'short', reason: 'max_wait' })).toBe(waitBefore + 1);
    });
  });

  describe('shedding a queued stream, and displacement', () => {
    it('a stream shed while queued is an ordinary JSON 503 with Retry-After, not an in-stream error', async () => {
      const key = await createKey(app);
      const gpu = fakes.short; // max_length 1, max_wait_ms 300
      gpu.pause();
      const blocker = generate(key, { model: 'short', prompt: unique('blocker') });
      await waitFor(() => gpu.started.length === 1);
      const shed = await generate(key, { model: 'short', prompt: unique('queued stream'), stream: true });
      expect(shed.status).toBe(503);
      expect(shed.headers['content-type']).toMatch(/^application\/json/);
      expect(shed.body.error.code).toBe('overloaded');
      expect(Number(shed.headers['retry-after'])).toBeGreaterThanOrEqual(1);
      gpu.resume();
      expect((await blocker).status).toBe(200);
    });

    it('a full queue: a high key displaces the waiter of a low key (503 overloaded with Retry-After) and is served', async () => {
      const low = await createKey(app, { priority: 'low' });
      const high = await createKey(app, { priority: 'high' });
      const gpu = fakes.short; // max_length 1
      gpu.pause();
      const blocker = generate(low, { model: 'short', prompt: unique('blocker') });
      await waitFor(() => gpu.started.length === 1);
      const displaced = (await enqueue('short', low, unique('low waiter'))).answer;
      const urgent = generate(high, { model: 'short', prompt: unique('urgent') });
      const turnedAway = await displaced;
      expect(turnedAway.status).toBe(503);
      expect(turnedAway.body.error.code).toBe('overloaded');
      expect(Number(turnedAway.headers['retry-after'])).toBeGreaterThanOrEqual(1);
      expect(scheduler.queued('short')).toBe(1); // the high request waits in its place
      gpu.resume();
      expect((await urgent).status).toBe(200);
      expect((await blocker).status).toBe(200);
    });
  });

  describe('per-key max_concurrent', () => {
    it('429 beyond it, with X-Concurrency-Limit/-Remaining and Retry-After: 1; the admin API shows the in-flight count', async () => {
      const key = await createKey(app, { max_concurrent: 2 });
      expect(key.view).toMatchObject({ max_concurrent: 2, priority: 'normal', weight: 1 });
      const gpu = fakes.plain;
      gpu.pause();
      const first = generate(key, { model: 'plain', prompt: unique('one') });
      const second = generate(key, { model: 'plain', prompt: unique('two') });
      await waitFor(() => gpu.started.length === 2);
      const refused = await generate(key, { model: 'plain', prompt: unique('three') });
      expect(refused.status).toBe(429);
      expect(refused.body.error.code).toBe('rate_limit_exceeded');
      expect(refused.body.error.message).toMatch(/concurrency/);
      expect(refused.headers['retry-after']).toBe('1');
      expect(refused.headers['x-concurrency-limit']).toBe('2');
      expect(refused.headers['x-concurrency-remaining']).toBe('0');
      const view = await app
        .http()
        .get(`/admin/keys/${key.id}`)
        .set(...adminAuth());
      expect(view.body.in_flight).toBe(2);
      expect(await metricValue('rate_limit_rejections_total', { reason: 'concurrency' })).toBeGreaterThanOrEqual(1);
      gpu.resume();
      expect((await first).status).toBe(200);
      expect((await second).status).toBe(200);
      const again = await generate(key, { model: 'plain', prompt: unique('again') });
      expect(again.status).toBe(200);
      expect(again.headers['x-concurrency-remaining']).toBe('1');
      expect(gpu.posts).toBe(3);
      const after = await app
        .http()
        .get(`/admin/keys/${key.id}`)
        .set(...adminAuth());
      expect(after.body.in_flight).toBe(0);
    });

    it('keys without it carry no concurrency headers, and the admin API validates the fields', async () => {
      const key = await createKey(app);
      const res = await generate(key, { model: 'plain', prompt: unique('free') });
      expect(res.status).toBe(200);
      expect(res.headers['x-concurrency-limit']).toBeUndefined();
      for (const bad of [
        { priority: 'urgent' },
        { weight: 0 },
        { weight: 101 },
        { max_concurrent: 0 },
        { priority: null },
      ]) {
        const refused = await app
          .http()
          .patch(`/admin/keys/${key.id}`)
          .set(...adminAuth())
          .send(bad);
        expect({ bad, status: refused.status }).toEqual({ bad, status: 400 });
      }
      const patched = await app
        .http()
        .patch(`/admin/keys/${key.id}`)
        .set(...adminAuth())
        .send({ max_concurrent: 5, priority: 'low', weight: 7 });
      expect(patched.body).toMatchObject({ max_concurrent: 5, priority: 'low', weight: 7 });
    });
  });

  describe('load-aware routing', () => {
    it('least_outstanding sends nothing more to a busy upstream while another is idle (weighted still does)', async () => {
      const key = await createKey(app);
      const run = async (model: string, a: FakeGpu, b: FakeGpu) => {
        a.pause();
        b.pause();
        const held = generate(key, { model, prompt: unique('long') });
        await waitFor(() => a.started.length + b.started.length === 1);
        const [busy, idle] = a.started.length === 1 ? [a, b] : [b, a];
        idle.resume();
        const onBusy: Promise<request.Response>[] = [];
        for (let i = 0; i < 4; i += 1) {
          const [busyBefore, idleBefore] = [busy.started.length, idle.started.length];
          const answer = generate(key, { model, prompt: unique('short') });
          await waitFor(() => busy.started.length + idle.started.length === busyBefore + idleBefore + 1);
          // The idle upstream answers before the next is sent; the busy one holds what it gets.
          if (busy.started.length > busyBefore) onBusy.push(answer);
          else expect((await answer).status).toBe(200);
        }
        busy.resume();
        expect((await held).status).toBe(200);
        for (const answer of onBusy) expect((await answer).status).toBe(200);
        return { busy: busy.posts, idle: idle.posts };
      };
      expect(await run('least', fakes.lo1, fakes.lo2)).toEqual({ busy: 1, idle: 4 });
      expect(await run('weighted', fakes.wt1, fakes.wt2)).toEqual({ busy: 3, idle: 2 });
      const busyGauge = await metricValue('llm_upstream_in_flight', {
        model: 'least',
        upstream: new URL(fakes.lo1.url).host,
      });
      expect(busyGauge).toBe(0);
    });

    it('reads vLLM /metrics: an upstream with a backlog gets nothing while the other is free', async () => {
      const key = await createKey(app);
      const [m1, m2] = [fakes.ml1, fakes.ml2];
      const scrapes = () => m1.requests.filter((r) => r.path === '/metrics').length;
      // A scrape that began after the load changed has been read once the next one begins (every
      // second): waiting for two makes the test independent of how fast this machine parses.
      const scrapedTwiceSince = async () => {
        const seen = scrapes();
        await waitFor(() => scrapes() >= seen + 2, 5000);
      };
      m1.reportedLoad = { running: 8, waiting: 5, kvCacheUsage: 0.91 };
      m2.reportedLoad = { running: 1, waiting: 0, kvCacheUsage: 0.1 };
      await scrapedTwiceSince();
      for (let i = 0; i < 4; i += 1)
        expect((await generate(key, { model: 'engine-load', prompt: unique('a') })).status).toBe(200);
      expect([m1.posts, m2.posts]).toEqual([0, 4]);

      m1.reportedLoad = { running: 1, waiting: 0, kvCacheUsage: 0.1 };
      m2.reportedLoad = { running: 8, waiting: 3, kvCacheUsage: 0.99 };
      await scrapedTwiceSince();
      for (let i = 0; i < 4; i += 1)
        expect((await generate(key, { model: 'engine-load', prompt: unique('b') })).status).toBe(200);
      expect([m1.posts, m2.posts]).toEqual([4, 4]);
    });
  });

  describe('prefix affinity', () => {
    const gpus = () => [fakes.af1, fakes.af2, fakes.af3];

    it('keeps requests sharing a prefix on one upstream (chat too); different prefixes spread', async () => {
      const key = await createKey(app);
      for (let i = 0; i < 6; i += 1) {
        const res = await generate(key, { model: 'affinity', prompt: `${SHARED_SYSTEM_PROMPT}Question ${i}?` });
        expect(res.status).toBe(200);
      }
      expect(
        gpus()
          .map((gpu) => gpu.posts)
          .sort(),
      ).toEqual([0, 0, 6]);
      for (const gpu of gpus()) gpu.reset();
      for (let i = 0; i < 12; i += 1) {
        await generate(key, { model: 'affinity', prompt: `System prompt number ${i}. `.repeat(20) });
      }
      expect(gpus().filter((gpu) => gpu.posts > 0).length).toBeGreaterThan(1);

      // Chat: the messages before the last user turn are the prefix.
      for (const gpu of gpus()) gpu.reset();
      for (let i = 0; i < 4; i += 1) {
        const res = await app
          .http()
          .post('/v1/chat/completions')
          .set('X-API-Key', key.key)
          .send({
            model: 'affinity',
            max_tokens: 4,
            messages: [
              { role: 'system', content: SHARED_SYSTEM_PROMPT },
              { role: 'user', content: `Question ${i}?` },
            ],
          });
        expect(res.status).toBe(200);
      }
      expect(
        gpus()
          .map((gpu) => gpu.posts)
          .sort(),
      ).toEqual([0, 0, 4]);
    });

    it('moves a prefix only when its upstream is saturated (max_in_flight) or its breaker is open', async () => {
      const key = await createKey(app);
      const prompt = (tail: string) => `${SHARED_SYSTEM_PROMPT}${tail}`;
      expect((await generate(key, { model: 'affinity', prompt: prompt(unique('home?')) })).status).toBe(200);
      const home = gpus().find((gpu) => gpu.posts === 1)!;
      const others = gpus().filter((gpu) => gpu !== home);

      home.pause();
      const held = generate(key, { model: 'affinity', prompt: prompt(unique('held')) });
      await waitFor(() => home.started.length === 2);
      const spilled = await generate(key, { model: 'affinity', prompt: prompt(unique('spilled')) });
      expect(spilled.status).toBe(200);
      expect(others.reduce((sum, gpu) => sum + gpu.posts, 0)).toBe(1);
      home.resume();
      expect((await held).status).toBe(200);
      expect((await generate(key, { model: 'affinity', prompt: prompt(unique('back home')) })).status).toBe(200);
      expect(home.posts).toBe(3);

      home.setMode('fail');
      expect((await generate(key, { model: 'affinity', prompt: prompt(unique('breaks it')) })).status).toBe(502);
      for (let i = 0; i < 3; i += 1) {
        expect((await generate(key, { model: 'affinity', prompt: prompt(unique('moved')) })).status).toBe(200);
      }
      expect(home.posts).toBe(4);
      // All three moved together, to the next upstream on the ring.
      const movedTo = others.filter((gpu) => gpu.started.some((p) => p.includes('moved')));
      expect(movedTo).toHaveLength(1);
      expect(movedTo[0].started.filter((p) => p.includes('moved'))).toHaveLength(3);
    });
  });
});

describeServices('max_concurrent across two replicas sharing PostgreSQL and Redis', () => {
  let first: TestApp;
  let second: TestApp;
  let gpu: FakeGpu;
  beforeAll(async () => {
    gpu = await FakeGpu.startGpu();
    const yaml = `
default_model: plain
models:
  - name: plain
    provider: vllm
    upstream_model: m
    base_url: ${gpu.url}
    cache_ttl_seconds: 0
`;
    first = await startTestApp({ modelsYaml: yaml });
    second = await startTestApp({ modelsYaml: yaml, shareWith: first });
  }, 30_000);
  afterAll(async () => {
    await second.close();
    await first.close();
    await gpu.close();
  });

  const generate = (app: TestApp, key: string, prompt: string) =>
    new Promise<request.Response>((resolve, reject) =>
      app.http().post('/v1/generate').set('X-API-Key', key).send({ prompt, max_new_tokens: 4 }).then(resolve, reject),
    );

  it('a generation in flight on one replica counts against the key on the other', async () => {
    const key = await createKey(first, { max_concurrent: 1 });
    gpu.pause();
    const held = generate(first, key.key, 'held on the first replica');
    await waitFor(() => gpu.started.length === 1, 2000);
    const refused = await generate(second, key.key, 'refused on the second');
    expect(refused.status).toBe(429);
    expect(refused.headers['x-concurrency-remaining']).toBe('0');
    expect(refused.headers['retry-after']).toBe('1');
    const view = await second
      .http()
      .get(`/admin/keys/${key.id}`)
      .set(...adminAuth());
    expect(view.body.in_flight).toBe(1);
    gpu.resume();
    expect((await held).status).toBe(200);
    // The release is not awaited by the request: wait (bounded) until the other replica sees it.
    const inFlight = async () =>
      (
        await second
          .http()
          .get(`/admin/keys/${key.id}`)
          .set(...adminAuth())
      ).body.in_flight as number;
    for (const started = Date.now(); (await inFlight()) !== 0 && Date.now() - started < 3000;) await sleep(20);
    expect((await generate(second, key.key, 'now accepted')).status).toBe(200);
  });
});
