/**
 * The end-to-end flow through the completion cache and generation (the seed's
 * test_integrate_generate): hits and misses for every parameter, defaults against explicit
 * values, TTL expiry, Cache-Control, coalescing, streaming store and replay, what is never
 * cached, and quota consumed by hits. In test:services the same file runs on the Redis store,
 * plus coalescing across two replicas.
 */
import { startTestApp, type TestApp } from './harness/app';
import { describeInProcess, describeServices } from './harness/environment';
import { adminAuth, createKey } from './harness/keys';
import { listenOnLoopback, postThenDisconnect } from './harness/listen';
import { sseEvents } from './harness/sse';
import { FakeVllm } from './fakes/fake-vllm';
import { waitFor } from './fakes/fake-server';

describeInProcess('completion cache', 'uses fake backends, an injected clock and its own models', () => {
  let app: TestApp;
  let key: string;
  let vllm: FakeVllm;

  const modelsYaml = () => `default_model: cached-m
models:
  - name: cached-m
    provider: vllm
    upstream_model: org/cached
    base_url: ${vllm.url}
    max_new_tokens: 64
    default_max_new_tokens: 16
    cache_ttl_seconds: 600
  - name: uncached-m
    provider: vllm
    upstream_model: org/cached
    base_url: ${vllm.url}
    cache_ttl_seconds: 0
  - name: global-ttl-m
    provider: vllm
    upstream_model: org/cached
    base_url: ${vllm.url}
  - name: mock-a
    provider: mock
`;

  beforeAll(async () => {
    vllm = await FakeVllm.start();
    app = await startTestApp({ modelsYaml: modelsYaml(), env: { CACHE_TTL_SECONDS: '30' } });
    key = (await createKey(app, { rpm_limit: 100_000 })).key;
  });
  afterAll(async () => {
    await app.close();
    await vllm.close();
  });
  beforeEach(() => vllm.reset());

  const backendCalls = () => vllm.requests.filter((r) => r.method === 'POST').length;
  let counter = 0;
  /** A prompt no other test has used, so each test starts from an empty cache entry. */
  const fresh = (label: string) => `${label} #${(counter += 1)}`;
  const generate = (body: Record<string, unknown>, headers: Record<string, string> = {}) =>
    app.http().post('/v1/generate').set('X-API-Key', key).set(headers).send(body);

  it('an identical request hits: cached: true, same output, zero usage, no backend call', async () => {
    const body = { prompt: fresh('identical'), temperature: 0.7, seed: 3 };
    const first = await generate(body);
    expect(first.body.cached).toBe(false);
    const second = await generate(body);
    expect(second.status).toBe(200);
    expect(second.body).toMatchObject({
      cached: true,
      output: first.body.output,
      finish_reason: first.body.finish_reason,
      model: 'cached-m',
    });
    expect(second.body.usage).toEqual({ prompt_tokens: 0, completion_tokens: 0, total_tokens: 0 });
    expect(second.body.id).not.toBe(first.body.id);
    expect(backendCalls()).toBe(1);
  });

  it.each([
    ['prompt', { prompt: 'another prompt' }],
    ['max_new_tokens', { max_new_tokens: 17 }],
    ['temperature', { temperature: 0.5 }],
    ['top_p', { top_p: 0.9 }],
    ['top_k', { top_k: 40 }],
    ['stop', { stop: ['zzz'] }],
    ['seed', { seed: 11 }],
    ['model', { model: 'global-ttl-m' }],
  ])('a different %s misses', async (_name, change) => {
    const base = { prompt: fresh('param'), max_new_tokens: 16, temperature: 1, top_p: 1, top_k: 0, seed: 10 };
    await generate(base);
    const other = await generate({ ...base, ...change });
    expect(other.body.cached).toBe(false);
    expect(backendCalls()).toBe(2);
  });

  it('defaults and explicit values hit the same entry', async () => {
    const prompt = fresh('defaults');
    await generate({ prompt });
    for (const explicit of [
      { temperature: 1.0 },
      { top_p: 1 },
      { top_k: 0 },
      { top_k: -1 },
      { max_new_tokens: 16 },
      { model: 'cached-m' },
      { temperature: 1, top_p: 1, top_k: -1, max_new_tokens: 16, stream: false },
    ]) {
      const res = await generate({ prompt, ...explicit });
      expect({ explicit, cached: res.body.cached }).toEqual({ explicit, cached: true });
    }
    const prompt2 = fresh('stop forms');
    await generate({ prompt: prompt2, stop: 'x' });
    expect((await generate({ prompt: prompt2, stop: ['x'] })).body.cached).toBe(true);
    expect((await generate({ prompt: prompt2, stop: ['x', 'x'] })).body.cached).toBe(true);
    expect(backendCalls()).toBe(2);
  });

  it('entries expire after the model’s cache_ttl_seconds, else CACHE_TTL_SECONDS', async () => {
    const body = { prompt: fresh('ttl') };
    await generate(body);
    app.clock.advance(599_000);
    expect((await generate(body)).body.cached).toBe(true);
    app.clock.advance(2_000);
    expect((await generate(body)).body.cached).toBe(false);

    const global = { prompt: fresh('global ttl'), model: 'global-ttl-m' };
    await generate(global);
    app.clock.advance(29_000);
    expect((await generate(global)).body.cached).toBe(true);
    app.clock.advance(2_000);
    expect((await generate(global)).body.cached).toBe(false);
  });

  it('cache_ttl_seconds: 0 disables caching for the model', async () => {
    const body = { prompt: fresh('no cache model'), model: 'uncached-m' };
    await generate(body);
    expect((await generate(body)).body.cached).toBe(false);
    expect(backendCalls()).toBe(2);
  });

  it('Cache-Control: no-cache skips the lookup but stores the answer', async () => {
    const body = { prompt: fresh('no-cache') };
    await generate(body);
    const fresh1 = await generate(body, { 'Cache-Control': 'no-cache' });
    expect(fresh1.body.cached).toBe(false);
    expect(backendCalls()).toBe(2);
    vllm.setMode('fail'); // the stored answer must come from the cache now
    expect((await generate(body)).body.cached).toBe(true);
  });

  it('Cache-Control: no-store skips the lookup and the store', async () => {
    const body = { prompt: fresh('no-store') };
    const first = await generate(body, { 'Cache-Control': 'no-store' });
    expect(first.body.cached).toBe(false);
    expect((await generate(body)).body.cached).toBe(false);
    expect(backendCalls()).toBe(2);
    expect((await generate(body, { 'Cache-Control': 'no-store' })).body.cached).toBe(false);
  });

  it('errors are never cached', async () => {
    const body = { prompt: fresh('error') };
    vllm.setMode('fail');
    expect((await generate(body)).status).toBe(502);
    vllm.setMode('normal');
    const after = await generate(body);
    expect(after.status).toBe(200);
    expect(after.body.cached).toBe(false);
  });

  it('20 identical concurrent misses share one backend call; the others answer cached: true', async () => {
    vllm.setMode('slow', { delayMs: 150 });
    const body = { prompt: fresh('coalesce') };
    const results = await Promise.all(Array.from({ length: 20 }, () => generate(body)));
    expect(results.map((r) => r.status)).toEqual(Array(20).fill(200));
    expect(backendCalls()).toBe(1);
    expect(results.filter((r) => r.body.cached === false)).toHaveLength(1);
    expect(results.filter((r) => r.body.cached === true)).toHaveLength(19);
    expect(new Set(results.map((r) => r.body.output)).size).toBe(1);
  });

  it('a completed stream is stored; a hit on a stream replays it as SSE in the same format', async () => {
    const body = { prompt: fresh('stream store'), stream: true };
    const live = await generate(body);
    const liveEvents = sseEvents(live.text);
    const liveFinal = liveEvents.at(-2) as Record<string, unknown>;
    expect(liveFinal).toMatchObject({ done: true, cached: false });

    const replay = await generate(body);
    expect(replay.headers['content-type']).toMatch(/^text\/event-stream/);
    const events = sseEvents(replay.text);
    expect(events.at(-1)).toBe('[DONE]');
    const final = events.at(-2) as Record<string, unknown>;
    const deltas = events.slice(0, -2) as { id: string; model: string; delta: string }[];
    expect(deltas.length).toBeGreaterThan(0);
    for (const delta of deltas) expect(Object.keys(delta).sort()).toEqual(['delta', 'id', 'model']);
    expect(deltas.map((d) => d.delta).join('')).toBe(liveFinal.output);
    expect(final).toMatchObject({ done: true, cached: true, output: liveFinal.output, usage: { total_tokens: 0 } });

    // stream is not part of the key: the finished stream answers a JSON request, and the reverse.
    expect((await generate({ prompt: body.prompt })).body).toMatchObject({ cached: true, output: liveFinal.output });
    const json = { prompt: fresh('json then stream') };
    await generate(json);
    expect((sseEvents((await generate({ ...json, stream: true })).text).at(-2) as { cached: boolean }).cached).toBe(
      true,
    );
    expect(backendCalls()).toBe(2);
  });

  it('a stream cut off by the client is never cached', async () => {
    const baseUrl = await listenOnLoopback(app);
    vllm.setMode('slow', { delayMs: 100 });
    const prompt = fresh('cut stream');
    await postThenDisconnect(baseUrl, '/v1/generate', { 'x-api-key': key }, { prompt, stream: true }, 250);
    await waitFor(() => vllm.aborted.length > 0, 1000);
    vllm.setMode('normal');
    const after = await generate({ prompt });
    expect(after.body.cached).toBe(false);
    expect(backendCalls()).toBe(2);
  });

  it('a hit counts against the rate limit: rpm_limit 2 → miss, hit, then the same request is 429', async () => {
    const limited = await createKey(app, { rpm_limit: 2 });
    const body = { prompt: fresh('rate limited hit') };
    const send = () => app.http().post('/v1/generate').set('X-API-Key', limited.key).send(body);
    const miss = await send();
    expect(miss.status).toBe(200);
    expect(miss.body.cached).toBe(false);
    const hit = await send();
    expect(hit.status).toBe(200);
    expect(hit.body.cached).toBe(true);
    expect(hit.headers['x-ratelimit-remaining']).toBe('0');
    const third = await send();
    expect(third.status).toBe(429);
    expect(third.body.error.code).toBe('rate_limit_exceeded');
    expect(Number(third.headers['retry-after'])).toBeGreaterThan(0);
    expect(backendCalls()).toBe(1);
    // The limit is per minute, not a cap: the next window answers from the cache again.
    app.clock.advance(61_000);
    const later = await send();
    expect(later.status).toBe(200);
    expect(later.body.cached).toBe(true);
  });

  it('a hit still passes authentication, the rate limit and the quota (one unit, zero tokens)', async () => {
    const limited = await createKey(app, { monthly_quota: 3, rpm_limit: 100 });
    const body = { prompt: fresh('quota'), model: 'mock-a' };
    const send = () => app.http().post('/v1/generate').set('X-API-Key', limited.key).send(body);
    expect((await send()).body.cached).toBe(false);
    const hit = await send();
    expect(hit.body.cached).toBe(true);
    expect(hit.headers['x-quota-remaining']).toBe('1');
    expect((await send()).body.cached).toBe(true);
    const exhausted = await send();
    expect(exhausted.status).toBe(402);
    expect(exhausted.body.error.code).toBe('quota_exhausted');
    expect((await app.http().post('/v1/generate').send(body)).status).toBe(401);

    const read = await app
      .http()
      .get(`/admin/keys/${limited.id}`)
      .set(...adminAuth());
    expect(read.body.usage.requests).toBe(3);
    const day = app.clock.now().toISOString().slice(0, 10);
    const ledger = await app
      .http()
      .get(`/admin/keys/${limited.id}/usage?from=${day}&to=${day}`)
      .set(...adminAuth());
    expect(ledger.body.data).toEqual([expect.objectContaining({ model: 'mock-a', requests: 3, cached_requests: 2 })]);
    expect(read.body.usage.tokens).toBe(ledger.body.data[0].prompt_tokens + ledger.body.data[0].completion_tokens);
  });
});

describeServices('completion cache across replicas (Redis)', () => {
  let a: TestApp;
  let b: TestApp;
  let vllm: FakeVllm;
  let key: string;

  beforeAll(async () => {
    vllm = await FakeVllm.start();
    const yaml = `default_model: shared-m\nmodels:\n  - name: shared-m\n    provider: vllm\n    upstream_model: org/x\n    base_url: ${vllm.url}\n`;
    a = await startTestApp({ modelsYaml: yaml });
    b = await startTestApp({ modelsYaml: yaml, shareWith: a });
    key = (await createKey(a, { rpm_limit: 100_000 })).key;
  });
  afterAll(async () => {
    await b.close();
    await a.close();
    await vllm.close();
  });

  it('an answer stored by one replica is a hit on the other', async () => {
    const body = { prompt: 'shared entry' };
    expect((await a.http().post('/v1/generate').set('X-API-Key', key).send(body)).body.cached).toBe(false);
    expect((await b.http().post('/v1/generate').set('X-API-Key', key).send(body)).body.cached).toBe(true);
  });

  it('identical misses on both replicas at once make one backend call', async () => {
    vllm.reset();
    vllm.setMode('slow', { delayMs: 200 });
    const body = { prompt: 'coalesce across replicas' };
    const results = await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        (i % 2 === 0 ? a : b).http().post('/v1/generate').set('X-API-Key', key).send(body),
      ),
    );
    expect(results.map((r) => r.status)).toEqual(Array(10).fill(200));
    expect(vllm.requests.filter((r) => r.method === 'POST')).toHaveLength(1);
    expect(results.filter((r) => r.body.cached === false)).toHaveLength(1);
  });
});
