/**
 * OpenTelemetry traces, received by an in-test OTLP collector (test/harness/otlp-receiver.ts):
 * one SERVER span per request named by its route template, with child spans for authentication,
 * rate limit, quota, cache lookup and each upstream call (GenAI semantic-convention attributes,
 * a first-token event on streams), a client's `traceparent` continues its trace, `traceparent`
 * reaches the upstream (the fake vLLM), prompt and output text never reach a span unless opted
 * in, the request log line carries the server span's ids, and every OTLP protocol exports.
 */
import { randomBytes } from 'node:crypto';
import { EVENTS, GEN_AI, LLM, SPANS } from '../src/infra/tracing/trace-attributes';
import { Tracing } from '../src/infra/tracing/tracing';
import { startTestApp, type TestApp, type TestAppOptions } from './harness/app';
import { describeInProcess } from './harness/environment';
import { createKey } from './harness/keys';
import { OtlpReceiver, type ReceivedSpan } from './harness/otlp-receiver';
import { waitFor } from './fakes/fake-server';
import { FakeVllm } from './fakes/fake-vllm';

jest.setTimeout(30_000);

/** The upstream call's span of /v1/generate on model vllm-a (`{operation} {model}`). */
const GENERATE_CALL = 'text_completion vllm-a';

const MODELS = (fakeUrl: string) => `default_model: vllm-a
models:
  - name: vllm-a
    provider: vllm
    upstream_model: m
    base_url: ${fakeUrl}
    max_new_tokens: 64
  - name: mock-a
    provider: mock
  - name: embed-a
    kind: embedding
    provider: mock
  - name: queued-a
    provider: vllm
    upstream_model: m
    base_url: ${fakeUrl}
    max_new_tokens: 64
    max_in_flight: 1
    queue: { max_length: 8, max_wait_ms: 10000 }
`;

interface Traced {
  app: TestApp;
  key: string;
  logs: string[];
}

async function tracedApp(receiver: OtlpReceiver, fake: FakeVllm, env: Record<string, string> = {}): Promise<Traced> {
  const logs: string[] = [];
  const options: TestAppOptions = {
    env: {
      OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
      OTEL_SERVICE_NAME: 'llm-test',
      OTEL_RESOURCE_ATTRIBUTES: 'deployment.environment.name=test,service.namespace=llm',
      LOG_LEVEL: 'info',
      ...env,
    },
    modelsYaml: MODELS(fake.url),
    logStream: { write: (line) => logs.push(line) },
  };
  const app = await startTestApp(options);
  const key = (await createKey(app)).key;
  return { app, key, logs };
}

async function flushed(traced: Traced): Promise<void> {
  await traced.app.app!.get(Tracing).flush();
}

const serverSpans = (spans: ReceivedSpan[]) => spans.filter((span) => span.kind === 'server');
const one = (spans: ReceivedSpan[], name: string): ReceivedSpan => {
  const found = spans.filter((span) => span.name === name);
  if (found.length !== 1)
    throw new Error(`expected one span "${name}", got ${found.length}: ${spans.map((s) => s.name)}`);
  return found[0];
};
const hex = (bytes: number) => randomBytes(bytes).toString('hex');

describeInProcess('OpenTelemetry traces', 'boots apps with tracing settings and fake upstreams', () => {
  let receiver: OtlpReceiver;
  let fake: FakeVllm;
  let traced: Traced;

  beforeAll(async () => {
    receiver = await OtlpReceiver.http();
    fake = await FakeVllm.start();
    traced = await tracedApp(receiver, fake);
  });
  afterAll(async () => {
    await traced?.app.close();
    await fake?.close();
    await receiver?.close();
  });
  beforeEach(async () => {
    await flushed(traced);
    receiver.clear();
    fake.reset();
  });

  it('exports one SERVER span per request, named by the route template, with HTTP attributes and the resource', async () => {
    const http = traced.app.http;
    expect((await http().get('/v1/models').set('X-API-Key', traced.key)).status).toBe(200);
    expect((await http().get('/no/such/route')).status).toBe(404);
    expect((await http().get('/admin/keys/some-id').set('Authorization', 'Bearer wrong')).status).toBe(401);
    await flushed(traced);

    const spans = serverSpans(receiver.spans);
    expect(spans.map((span) => span.name).sort()).toEqual(['GET', 'GET /admin/keys/:id', 'GET /v1/models']);
    expect(new Set(spans.map((span) => span.traceId)).size).toBe(3);
    const models = one(spans, 'GET /v1/models');
    expect(models.parentSpanId).toBeNull();
    expect(models.attributes).toMatchObject({
      'http.request.method': 'GET',
      'http.route': '/v1/models',
      'http.response.status_code': 200,
      'url.path': '/v1/models',
      'url.scheme': 'http',
    });
    expect(models.attributes[LLM.requestId]).toMatch(/^req-/);
    expect(one(spans, 'GET').attributes).toMatchObject({
      'http.response.status_code': 404,
      'url.path': '/no/such/route',
    });
    expect(one(spans, 'GET').attributes['http.route']).toBeUndefined();
    expect(models.resource).toMatchObject({
      'service.name': 'llm-test',
      'service.namespace': 'llm',
      'deployment.environment.name': 'test',
      'telemetry.sdk.language': 'nodejs',
    });
    // Never the key or the admin token.
    expect(JSON.stringify(spans)).not.toContain(traced.key);
    expect(JSON.stringify(spans)).not.toContain('Bearer');
  });

  it('marks the server span failed on a 5xx answer', async () => {
    fake.mode = 'fail';
    const res = await traced.app.http().post('/v1/generate').set('X-API-Key', traced.key).send({ prompt: 'x' });
    expect(res.status).toBe(502);
    await flushed(traced);
    const server = one(receiver.spans, 'POST /v1/generate');
    expect(server.status.code).toBe(2);
    expect(server.attributes).toMatchObject({ 'http.response.status_code': 502, 'error.type': '502' });
    // The upstream call's span failed too.
    const call = one(receiver.spans, GENERATE_CALL);
    expect(call.status.code).toBe(2);
    expect(call.attributes['error.type']).toBe('BackendResponseError');
  });

  it('nests auth, rate limit, quota, cache lookup and the upstream call under the server span, with GenAI attributes', async () => {
    const { key, id } = await createKey(traced.app, { monthly_quota: 100 });
    const res = await traced.app
      .http()
      .post('/v1/generate')
      .set('X-API-Key', key)
      .send({ prompt: 'hello', max_new_tokens: 12, temperature: 0.5 });
    expect(res.status).toBe(200);
    await flushed(traced);
    const server = one(receiver.spans, 'POST /v1/generate');
    const children = receiver.spans.filter((span) => span.parentSpanId === server.spanId);
    expect(children.map((span) => span.name).sort()).toEqual(
      [SPANS.auth, SPANS.cacheLookup, SPANS.quota, SPANS.rateLimit, GENERATE_CALL].sort(),
    );
    for (const child of children) expect(child.traceId).toBe(server.traceId);
    const call = one(receiver.spans, GENERATE_CALL);
    expect(call.kind).toBe('client');
    expect(call.attributes).toMatchObject({
      [GEN_AI.operationName]: 'text_completion',
      [GEN_AI.providerName]: 'vllm',
      [GEN_AI.requestModel]: 'vllm-a',
      [GEN_AI.responseModel]: 'vllm-a',
      [GEN_AI.requestMaxTokens]: 12,
      [GEN_AI.requestTemperature]: 0.5,
      [GEN_AI.usageInputTokens]: res.body.usage.prompt_tokens,
      [GEN_AI.usageOutputTokens]: res.body.usage.completion_tokens,
      [GEN_AI.responseFinishReasons]: [res.body.finish_reason],
      [LLM.upstream]: new URL(fake.url).host,
    });
    expect(server.attributes).toMatchObject({
      [LLM.keyId]: id,
      [LLM.cacheResult]: 'miss',
      [GEN_AI.operationName]: 'text_completion',
      [GEN_AI.requestModel]: 'vllm-a',
      [GEN_AI.usageOutputTokens]: res.body.usage.completion_tokens,
    });

    // The same request again: a cache hit, no upstream call, no tokens.
    receiver.clear();
    const again = await traced.app
      .http()
      .post('/v1/generate')
      .set('X-API-Key', key)
      .send({ prompt: 'hello', max_new_tokens: 12, temperature: 0.5 });
    expect(again.body.cached).toBe(true);
    await flushed(traced);
    const hit = one(receiver.spans, 'POST /v1/generate');
    expect(hit.attributes).toMatchObject({ [LLM.cacheResult]: 'hit', [GEN_AI.usageOutputTokens]: 0 });
    expect(receiver.spans.filter((span) => span.name === GENERATE_CALL)).toEqual([]);
  });

  it('traces an embeddings call as the `embeddings` operation, without its input', async () => {
    const res = await traced.app
      .http()
      .post('/v1/embeddings')
      .set('X-API-Key', traced.key)
      .send({ model: 'embed-a', input: ['secret-embedding-input one', 'two'] });
    expect(res.status).toBe(200);
    await flushed(traced);
    const server = one(receiver.spans, 'POST /v1/embeddings');
    const call = one(receiver.spans, 'embeddings embed-a');
    expect(call).toMatchObject({ kind: 'client', parentSpanId: server.spanId });
    expect(call.attributes).toMatchObject({
      [GEN_AI.operationName]: 'embeddings',
      [GEN_AI.providerName]: 'mock',
      [GEN_AI.requestModel]: 'embed-a',
      [GEN_AI.responseModel]: 'embed-a',
      [GEN_AI.usageInputTokens]: res.body.usage.prompt_tokens,
    });
    expect(call.attributes[GEN_AI.requestMaxTokens]).toBeUndefined();
    expect(server.attributes).toMatchObject({ [GEN_AI.operationName]: 'embeddings', [LLM.cacheResult]: 'miss' });
    expect(JSON.stringify(receiver.spans)).not.toContain('secret-embedding-input');
  });

  it('records the wait for a model at max_in_flight as a queue span', async () => {
    fake.setMode('slow', { delayMs: 150 });
    const send = (prompt: string) =>
      traced.app.http().post('/v1/generate').set('X-API-Key', traced.key).send({ model: 'queued-a', prompt });
    const answers = await Promise.all([send('first in line'), send('second in line')]);
    expect(answers.map((res) => res.status)).toEqual([200, 200]);
    await flushed(traced);
    const queued = receiver.spans.filter((span) => span.name === SPANS.queue);
    expect(queued).toHaveLength(1); // the first went straight through
    const server = receiver.spans.find((span) => span.spanId === queued[0].parentSpanId);
    expect(server?.name).toBe('POST /v1/generate');
  });

  it('marks limit rejections on the server span', async () => {
    const { key } = await createKey(traced.app, { rpm_limit: 1 });
    const http = () => traced.app.http().post('/v1/generate').set('X-API-Key', key);
    expect((await http().send({ prompt: 'first' })).status).toBe(200);
    expect((await http().send({ prompt: 'second' })).status).toBe(429);
    await flushed(traced);
    const rejected = receiver.spans.filter(
      (span) => span.name === 'POST /v1/generate' && span.attributes['http.response.status_code'] === 429,
    );
    expect(rejected).toHaveLength(1);
    expect(rejected[0].attributes[LLM.rateLimitRejected]).toBe('rpm');
    const limit = receiver.spans.find(
      (span) => span.name === SPANS.rateLimit && span.parentSpanId === rejected[0].spanId,
    );
    expect(limit).toBeDefined();
    // No upstream call for the rejected request.
    expect(receiver.spans.filter((span) => span.name === GENERATE_CALL)).toHaveLength(1);

    const quotaKey = await createKey(traced.app, { monthly_quota: 1 });
    const quota = () => traced.app.http().post('/v1/generate').set('X-API-Key', quotaKey.key);
    expect((await quota().send({ prompt: 'q1' })).status).toBe(200);
    expect((await quota().send({ prompt: 'q2' })).status).toBe(402);
    await flushed(traced);
    const refused = receiver.spans.find(
      (span) => span.name === 'POST /v1/generate' && span.attributes['http.response.status_code'] === 402,
    );
    expect(refused?.attributes[LLM.quotaRejected]).toBe('requests');
    const quotaSpan = receiver.spans.find((span) => span.name === SPANS.quota && span.parentSpanId === refused?.spanId);
    expect(quotaSpan?.status.code).toBe(2);
    expect(quotaSpan?.attributes['error.type']).toBe('quota_exhausted');
  });

  it('sends the upstream call span’s traceparent to the upstream', async () => {
    const res = await traced.app.http().post('/v1/generate').set('X-API-Key', traced.key).send({ prompt: 'hello' });
    expect(res.status).toBe(200);
    await flushed(traced);
    const server = one(receiver.spans, 'POST /v1/generate');
    const call = one(receiver.spans, GENERATE_CALL);
    expect(call).toMatchObject({ kind: 'client', traceId: server.traceId, parentSpanId: server.spanId });

    const upstream = fake.requests.filter((req) => req.path === '/v1/completions');
    expect(upstream).toHaveLength(1);
    expect(upstream[0].headers.traceparent).toBe(`00-${server.traceId}-${call.spanId}-01`);
  });

  it('keeps a streamed call’s span active while the stream is pulled, with a first-token event', async () => {
    const res = await traced.app
      .http()
      .post('/v1/generate')
      .set('X-API-Key', traced.key)
      .send({ prompt: 'stream me', stream: true });
    expect(res.status).toBe(200);
    await flushed(traced);
    const server = one(receiver.spans, 'POST /v1/generate');
    const call = one(receiver.spans, GENERATE_CALL);
    expect(call).toMatchObject({ traceId: server.traceId, parentSpanId: server.spanId });
    expect(call.events.map((event) => event.name)).toEqual([EVENTS.firstToken]);
    expect(fake.requests[0].headers.traceparent).toBe(`00-${server.traceId}-${call.spanId}-01`);
  });

  it('continues the trace of a client that sends traceparent', async () => {
    const traceId = hex(16);
    const parentId = hex(8);
    const res = await traced.app
      .http()
      .post('/v1/generate')
      .set('X-API-Key', traced.key)
      .set('traceparent', `00-${traceId}-${parentId}-01`)
      .set('X-Request-Id', 'client-req-1')
      .send({ prompt: 'continue' });
    expect(res.status).toBe(200);
    await flushed(traced);
    const server = one(receiver.spans, 'POST /v1/generate');
    expect(server).toMatchObject({ traceId, parentSpanId: parentId });
    expect(server.attributes[LLM.requestId]).toBe('client-req-1');
    expect(fake.requests[0].headers.traceparent).toMatch(new RegExp(`^00-${traceId}-[0-9a-f]{16}-01$`));
  });

  it('records no prompt or output text in any span by default', async () => {
    const marker = `secret-prompt-${hex(6)}`;
    const json = await traced.app
      .http()
      .post('/v1/generate')
      .set('X-API-Key', traced.key)
      .send({ prompt: `${marker} please`, stop: [marker] });
    expect(json.status).toBe(200);
    const chat = await traced.app
      .http()
      .post('/v1/chat/completions')
      .set('X-API-Key', traced.key)
      .send({
        model: 'vllm-a',
        messages: [
          { role: 'system', content: `${marker} system` },
          { role: 'user', content: `${marker} user` },
        ],
      });
    expect(chat.status).toBe(200);
    await flushed(traced);
    const exported = JSON.stringify(receiver.spans);
    expect(receiver.spans.length).toBeGreaterThanOrEqual(4);
    expect(exported).not.toContain(marker);
    expect(exported).not.toContain(json.body.output);
    expect(exported).not.toContain(chat.body.choices[0].message.content);
  });

  it('writes trace_id and span_id of the server span on the request log line', async () => {
    traced.logs.length = 0;
    const res = await traced.app.http().get('/v1/models').set('X-API-Key', traced.key);
    expect(res.status).toBe(200);
    await flushed(traced);
    const server = one(receiver.spans, 'GET /v1/models');
    const line = traced.logs
      .map((text) => JSON.parse(text) as Record<string, unknown>)
      .find((entry) => entry.msg === 'request' && entry.request_id === res.headers['x-request-id']);
    expect(line).toMatchObject({ trace_id: server.traceId, span_id: server.spanId });
  });
});

describeInProcess('OpenTelemetry settings', 'boots apps with tracing settings and fake upstreams', () => {
  let fake: FakeVllm;
  beforeAll(async () => {
    fake = await FakeVllm.start();
  });
  afterAll(async () => {
    await fake?.close();
  });

  it('exports over http/json; records content only when opted in; logs failed exports without their headers', async () => {
    const receiver = await OtlpReceiver.http();
    const traced = await tracedApp(receiver, fake, {
      OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
      OTEL_EXPORTER_OTLP_HEADERS: 'authorization=Bearer%20collector-secret',
      OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT: 'true',
    });
    try {
      const res = await traced.app.http().post('/v1/generate').set('X-API-Key', traced.key).send({ prompt: 'opt in' });
      expect(res.status).toBe(200);
      await flushed(traced);
      expect(receiver.exports.map((e) => e.transport)).toEqual(['http/json']);
      expect(receiver.exports[0].headers.authorization).toBe('Bearer collector-secret');
      const call = one(receiver.spans, GENERATE_CALL);
      expect(JSON.parse(call.attributes['gen_ai.input.messages'] as string)).toEqual([
        { role: 'user', parts: [{ type: 'text', content: 'opt in' }] },
      ]);
      expect(JSON.parse(call.attributes['gen_ai.output.messages'] as string)).toEqual([
        { role: 'assistant', parts: [{ type: 'text', content: res.body.output }], finish_reason: 'stop' },
      ]);

      // The collector refuses (400: not retried): requests go on, the failure is logged once.
      receiver.status = 400;
      expect((await traced.app.http().get('/healthz')).status).toBe(200);
      await flushed(traced);
      const failure = traced.logs.find((line) => line.includes('trace export failed'));
      expect(failure).toBeDefined();
      expect(JSON.parse(failure!)).toMatchObject({ level: 'warn', protocol: 'http/json', spans_dropped: 1 });
      expect(traced.logs.join('')).not.toContain('collector-secret');
    } finally {
      await traced.app.close();
      await receiver.close();
    }
  });

  it('sends batches on the schedule OTEL_BSP_SCHEDULE_DELAY sets (the default waits 5 s)', async () => {
    const receiver = await OtlpReceiver.http();
    const traced = await tracedApp(receiver, fake, { OTEL_BSP_SCHEDULE_DELAY: '100' });
    try {
      const sent = Date.now();
      expect((await traced.app.http().get('/v1/models').set('X-API-Key', traced.key)).status).toBe(200);
      // No flush: only the processor's own timer sends the span.
      await waitFor(() => receiver.spans.some((span) => span.name === 'GET /v1/models'), 2_000);
      expect(Date.now() - sent).toBeLessThan(2_000);
    } finally {
      await traced.app.close();
      await receiver.close();
    }
  });

  it('exports over gRPC with the headers as metadata, and flushes pending spans at shutdown', async () => {
    const receiver = await OtlpReceiver.grpc();
    const traced = await tracedApp(receiver, fake, {
      OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc',
      OTEL_EXPORTER_OTLP_HEADERS: 'x-collector-key=k%3D1',
    });
    let closed = false;
    try {
      expect((await traced.app.http().get('/v1/models').set('X-API-Key', traced.key)).status).toBe(200);
      // No flush: the batch would wait 5 s; closing the app exports it.
      closed = true;
      await traced.app.close();
      expect(one(serverSpans(receiver.spans), 'GET /v1/models').resource['service.name']).toBe('llm-test');
      expect(receiver.exports.map((e) => [e.transport, e.headers['x-collector-key']])).toEqual([['grpc', 'k=1']]);
    } finally {
      if (!closed) await traced.app.close();
      await receiver.close();
    }
  });

  it('with the always_off sampler exports nothing but still propagates an unsampled traceparent', async () => {
    const receiver = await OtlpReceiver.http();
    const traced = await tracedApp(receiver, fake, { OTEL_TRACES_SAMPLER: 'always_off' });
    fake.reset();
    try {
      const res = await traced.app.http().post('/v1/generate').set('X-API-Key', traced.key).send({ prompt: 'off' });
      expect(res.status).toBe(200);
      await flushed(traced);
      expect(receiver.spans).toEqual([]);
      expect(fake.requests[0].headers.traceparent).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-00$/);
      const line = traced.logs
        .map((text) => JSON.parse(text) as Record<string, unknown>)
        .find((e) => e.msg === 'request');
      expect(line?.trace_id).toMatch(/^[0-9a-f]{32}$/);
    } finally {
      await traced.app.close();
      await receiver.close();
    }
  });

  it('off (no endpoint): no traceparent to the upstream, no trace ids in the log', async () => {
    const logs: string[] = [];
    const app = await startTestApp({
      env: { LOG_LEVEL: 'info' },
      modelsYaml: MODELS(fake.url),
      logStream: { write: (line) => logs.push(line) },
    });
    fake.reset();
    try {
      expect(app.app!.get(Tracing).enabled).toBe(false);
      const { key } = await createKey(app);
      expect((await app.http().post('/v1/generate').set('X-API-Key', key).send({ prompt: 'x' })).status).toBe(200);
      expect(fake.requests[0].headers.traceparent).toBeUndefined();
      const requestLines = logs.filter((line) => line.includes('"msg":"request"'));
      expect(requestLines.length).toBeGreaterThanOrEqual(2);
      for (const line of requestLines) expect(JSON.parse(line)).not.toHaveProperty('trace_id');
    } finally {
      await app.close();
    }
  });
});
