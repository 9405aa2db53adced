/**
 * Property-based fuzzing of every route and method (fast-check). Most cases on `/v1/*` are valid
 * requests (API.md, the OpenAI reference) with one field mutated at a time, streams included, on
 * the mock provider and on a fake vLLM upstream, so they reach the backend, cache, coalescing,
 * billing and streaming paths; the rest are arbitrary and hostile bodies, query strings, path
 * parameters, headers and methods, with and without valid credentials. Whatever comes in, the
 * answer is never a 5xx, every error (in a stream too) is the envelope of API.md with a code of
 * its table, a 200 stream ends with `[DONE]`, and no answer carries a stack trace, SQL or a secret
 * (the admin and metrics tokens, the client key).
 *
 * `npm test` runs a bounded number of runs with a fixed seed; for a long run:
 *   FUZZ_RUNS=20000 npx jest test/fuzz.e2e-spec.ts            (FUZZ_SEED=<n> to replay a run)
 * The run count, the seed and how many `/v1/*` cases reached a backend are printed.
 */
import fc from 'fast-check';
import type { LlmProvider } from '../src/modules/providers/provider.types';
import { ModelRegistry } from '../src/modules/scheduling/model-registry';
import { ERROR_STATUS } from '../src/http/core/error-status';
import { startTestApp, type TestApp } from './harness/app';
import { describeInProcess, TEST_ADMIN_TOKEN } from './harness/environment';
import { hostileString, jsonValue, mutatedOneField, validBodies } from './harness/fuzz-bodies';
import { createKey } from './harness/keys';
import { FakeVllm } from './fakes/fake-vllm';

const RUNS = Number(process.env.FUZZ_RUNS ?? 400);
const SEED = Number(process.env.FUZZ_SEED ?? 20261202);
const METRICS_TOKEN = 'fuzz-metrics-token-0123456789abcdef';

type Method = 'get' | 'post' | 'put' | 'patch' | 'delete' | 'head' | 'options';

interface Route {
  method: Method;
  /** Express route template, `:id` for a key id. */
  path: string;
  /** Which credential the route takes. */
  auth: 'client' | 'admin' | 'metrics' | 'none';
  /** The body fields the route knows, for valid-ish bodies. */
  fields: string[];
  /** Routes outside the error envelope on success or failure (API.md: /readyz; /metrics is text). */
  plain?: boolean;
}

const SAMPLING = ['model', 'temperature', 'top_p', 'top_k', 'stop', 'seed', 'stream'];
const KEY_FIELDS = [
  'name',
  'rpm_limit',
  'tpm_limit',
  'monthly_quota',
  'monthly_token_quota',
  'models',
  'expires_at',
  'monthly_budget',
  'team_id',
];
const TEAM_FIELDS = [
  'name',
  'rpm_limit',
  'tpm_limit',
  'monthly_quota',
  'monthly_token_quota',
  'monthly_budget',
  'max_concurrent',
];

const ROUTES: Route[] = [
  { method: 'post', path: '/v1/generate', auth: 'client', fields: ['prompt', 'max_new_tokens', ...SAMPLING] },
  {
    method: 'post',
    path: '/v1/completions',
    auth: 'client',
    fields: ['prompt', 'max_tokens', 'stream_options', ...SAMPLING],
  },
  {
    method: 'post',
    path: '/v1/chat/completions',
    auth: 'client',
    fields: [
      'messages',
      'max_tokens',
      'max_completion_tokens',
      'stream_options',
      'tools',
      'tool_choice',
      'parallel_tool_calls',
      'response_format',
      ...SAMPLING,
    ],
  },
  {
    method: 'post',
    path: '/v1/embeddings',
    auth: 'client',
    fields: ['model', 'input', 'encoding_format', 'dimensions', 'user'],
  },
  { method: 'get', path: '/v1/models', auth: 'client', fields: [] },
  { method: 'post', path: '/admin/keys', auth: 'admin', fields: KEY_FIELDS },
  { method: 'get', path: '/admin/keys', auth: 'admin', fields: [] },
  { method: 'get', path: '/admin/keys/:id', auth: 'admin', fields: [] },
  { method: 'patch', path: '/admin/keys/:id', auth: 'admin', fields: [...KEY_FIELDS, 'active'] },
  { method: 'post', path: '/admin/keys/:id/rotate', auth: 'admin', fields: [] },
  { method: 'delete', path: '/admin/keys/:id', auth: 'admin', fields: [] },
  { method: 'get', path: '/admin/keys/:id/usage', auth: 'admin', fields: [] },
  { method: 'post', path: '/admin/teams', auth: 'admin', fields: TEAM_FIELDS },
  { method: 'get', path: '/admin/teams', auth: 'admin', fields: [] },
  { method: 'get', path: '/admin/teams/:id', auth: 'admin', fields: [] },
  { method: 'patch', path: '/admin/teams/:id', auth: 'admin', fields: TEAM_FIELDS },
  { method: 'delete', path: '/admin/teams/:id', auth: 'admin', fields: [] },
  { method: 'get', path: '/admin/teams/:id/usage', auth: 'admin', fields: [] },
  { method: 'get', path: '/admin/usage', auth: 'admin', fields: [] },
  { method: 'get', path: '/admin/models', auth: 'admin', fields: [] },
  { method: 'get', path: '/admin/ui', auth: 'none', fields: [], plain: true },
  { method: 'get', path: '/admin/ui/*path', auth: 'none', fields: [], plain: true },
  { method: 'get', path: '/', auth: 'none', fields: [] },
  { method: 'get', path: '/healthz', auth: 'none', fields: [] },
  { method: 'get', path: '/readyz', auth: 'none', fields: [], plain: true },
  { method: 'get', path: '/metrics', auth: 'metrics', fields: [], plain: true },
];

/** A body with the route's own fields (valid-ish values of any type) and sometimes an unknown one. */
function fieldsBody(route: Route): fc.Arbitrary<Record<string, unknown>> {
  if (route.fields.length === 0) return fc.dictionary(hostileString, jsonValue, { maxKeys: 3 });
  const known = Object.fromEntries(route.fields.map((field) => [field, jsonValue]));
  return fc.record(known, { requiredKeys: [] });
}

/** Raw body text: valid JSON of any shape, malformed JSON, or JSON nested too deep. */
const rawBody = fc.oneof(
  jsonValue.map((value) => JSON.stringify(value) ?? 'null'),
  fc.string(),
  fc.integer({ min: 60, max: 3000 }).map((depth) => '['.repeat(depth) + ']'.repeat(depth)),
  fc.constantFrom('{', '{"a":', '[1,2', '"unterminated', '{"prompt": "x"}}', '\u0000'),
);

const headerValue = fc.stringMatching(/^[\x20-\x7e]{0,80}$/);

interface Input {
  route: Route;
  /** The method sent: the route's own, mostly; any other now and then. */
  method: Method;
  id: string;
  credential: 'valid' | 'missing' | 'garbage';
  query: Record<string, string>;
  body: { kind: 'none' } | { kind: 'json'; value: unknown } | { kind: 'raw'; text: string; type: string };
  headers: Record<string, string>;
}

const OTHER_METHODS: Method[] = ['get', 'post', 'put', 'patch', 'delete', 'head', 'options'];
const CHAT_MODELS = ['mock-a', 'upstream'];
const EMBEDDING_MODELS = ['mock-emb', 'upstream-emb'];
const VALID = validBodies(CHAT_MODELS, EMBEDDING_MODELS);

describeInProcess('fuzzing every route', 'needs the in-process app and its keys', () => {
  let app: TestApp;
  let upstream: FakeVllm;
  let clientKey: string;
  let victimId: string;
  /** Calls that reached a provider (the mock or the fake upstream's). */
  let backendCalls = 0;
  const reach = { v1Cases: 0, reachedBackend: 0 };

  beforeAll(async () => {
    upstream = await FakeVllm.start();
    const modelsYaml = `
default_model: mock-a
models:
  - name: mock-a
    provider: mock
    max_new_tokens: 64
    default_max_new_tokens: 16
  - name: upstream
    provider: vllm
    upstream_model: m
    base_url: ${upstream.url}
    max_new_tokens: 64
    default_max_new_tokens: 16
  - name: mock-emb
    kind: embedding
    provider: mock
  - name: upstream-emb
    kind: embedding
    provider: vllm
    upstream_model: e
    base_url: ${upstream.url}
`;
    app = await startTestApp({
      modelsYaml,
      env: { AUTH_FAILURE_LIMIT: '1000000', METRICS_TOKEN, MAX_PROMPT_CHARS: '200000' },
    });
    for (const { providers } of app.app!.get(ModelRegistry).all())
      for (const provider of providers) countCalls(provider);
    clientKey = (await createKey(app, { rpm_limit: 1_000_000 })).key;
    victimId = (await createKey(app, { name: 'victim' })).id;
    process.stdout.write(`fuzz: ${RUNS} runs, seed ${SEED} (FUZZ_RUNS / FUZZ_SEED to change)\n`);
  });
  afterAll(async () => {
    await app?.close();
    await upstream?.close();
  });

  /** Counts every generate, stream and embed call the provider gets. */
  function countCalls(provider: LlmProvider): void {
    const counted = provider as unknown as Record<string, unknown>;
    for (const name of ['generate', 'stream', 'embed'] as const) {
      const original = counted[name];
      if (typeof original !== 'function') continue;
      counted[name] = function (this: unknown, ...args: unknown[]) {
        backendCalls += 1;
        return (original as (...a: unknown[]) => unknown).apply(provider, args);
      };
    }
  }

  it('the route list covers every route and method the server has', () => {
    const router = app.app!.getHttpAdapter().getInstance().router as {
      stack: { route?: { path: string; methods: Record<string, boolean> } }[];
    };
    const served = [
      ...new Set(
        router.stack
          .filter((layer) => layer.route)
          .flatMap((layer) => Object.keys(layer.route!.methods).map((method) => `${method} ${layer.route!.path}`)),
      ),
    ].sort();
    expect(ROUTES.map((route) => `${route.method} ${route.path}`).sort()).toEqual(served);
  });

  const json = (value: fc.Arbitrary<unknown>) => value.map((v) => ({ kind: 'json' as const, value: v }));

  /** Any body at all: none, the route's fields with any values, any JSON, raw text of any type. */
  function hostileBody(route: Route): fc.Arbitrary<Input['body']> {
    return fc.oneof(
      fc.constant({ kind: 'none' as const }),
      json(fieldsBody(route)),
      json(jsonValue),
      fc.record({
        kind: fc.constant('raw' as const),
        text: rawBody,
        type: fc.constantFrom(
          'application/json',
          'text/plain',
          'application/x-www-form-urlencoded',
          'application/vnd.x+json',
        ),
      }),
    );
  }

  const idOf = fc.oneof(
    fc.constant('VICTIM'),
    fc.uuid(),
    hostileString.filter((s) => s.length > 0),
  );

  /** Anything: any method now and then, any credential, query, headers and body. */
  function hostileCase(route: Route): fc.Arbitrary<Input> {
    return fc.record({
      route: fc.constant(route),
      method: fc.oneof({ arbitrary: fc.constant(route.method), weight: 6 }, fc.constantFrom(...OTHER_METHODS)),
      id: idOf,
      credential: fc.constantFrom('valid', 'valid', 'missing', 'garbage'),
      query: fc.dictionary(fc.constantFrom('limit', 'cursor', 'from', 'to', 'q', 'x'), hostileString, {
        maxKeys: 3,
      }),
      body: hostileBody(route),
      headers: fc.record(
        {
          'cache-control': fc.constantFrom('no-cache', 'no-store', 'max-age=0, no-store', 'garbage'),
          'x-request-id': headerValue,
          'content-encoding': fc.constantFrom('gzip', 'identity', 'br', 'bogus'),
          'x-forwarded-for': headerValue,
        },
        { requiredKeys: [] },
      ),
    });
  }

  /** A valid request of a /v1 generation route, as it is or with one field mutated. */
  function requestCase(route: Route, valid: fc.Arbitrary<Record<string, unknown>>): fc.Arbitrary<Input> {
    return fc.record({
      route: fc.constant(route),
      method: fc.constant(route.method),
      id: fc.constant(''),
      credential: fc.oneof(
        { arbitrary: fc.constant('valid' as const), weight: 12 },
        fc.constantFrom('missing', 'garbage'),
      ),
      query: fc.constant({}),
      body: fc.oneof(
        { arbitrary: json(valid), weight: 2 },
        { arbitrary: json(mutatedOneField(valid, route.fields)), weight: 3 },
      ),
      headers: fc.record(
        { 'cache-control': fc.constantFrom('no-cache', 'no-store', 'max-age=0'), 'x-request-id': headerValue },
        { requiredKeys: [] },
      ),
    });
  }

  /**
   * Generation routes are picked more often (they are where the paths behind validation are),
   * and most of their cases are requests; every route also gets hostile cases.
   */
  const input: fc.Arbitrary<Input> = fc
    .oneof(...ROUTES.map((r) => ({ arbitrary: fc.constant(r), weight: VALID[r.path] ? 6 : 1 })))
    .chain((route) => {
      const valid = VALID[route.path];
      if (!valid) return hostileCase(route);
      return fc.oneof(
        { arbitrary: requestCase(route, valid), weight: 4 },
        { arbitrary: hostileCase(route), weight: 1 },
      );
    });

  function credentialHeaders(route: Route, credential: Input['credential']): Record<string, string> {
    if (credential === 'missing' || route.auth === 'none') return {};
    const garbage = credential === 'garbage';
    if (route.auth === 'client') return { 'x-api-key': garbage ? `sk-${'A'.repeat(43)}` : clientKey };
    const secret = route.auth === 'admin' ? TEST_ADMIN_TOKEN : METRICS_TOKEN;
    return { authorization: `Bearer ${garbage ? 'wrong-secret-value' : secret}` };
  }

  /** Percent-encodes the UTF-8 bytes (a lone surrogate, which no URL can hold, becomes U+FFFD). */
  const encodeSegment = (text: string) =>
    [...Buffer.from(text, 'utf8')]
      .map((byte) =>
        /[A-Za-z0-9._~-]/.test(String.fromCharCode(byte))
          ? String.fromCharCode(byte)
          : `%${byte.toString(16).padStart(2, '0')}`,
      )
      .join('');

  function pathOf(route: Route, id: string): string {
    const value = id === 'VICTIM' ? victimId : encodeSegment(id);
    return route.path.replace(':id', value).replace('*path', value);
  }

  const LEAKS = [
    /\bat \S+ \(.*:\d+:\d+\)/, // a stack frame
    /\b(SELECT|INSERT INTO|UPDATE \w+ SET|DELETE FROM)\b/,
    /api_keys|key_usage_daily|key_hash|team_usage_daily|budget_reservations|budget_reserved/,
    /QueryFailedError|TypeError|ReferenceError/,
  ];

  /** An error envelope's code is one of the table's, with the status the table gives it (when known). */
  function expectTableError(where: string, body: unknown, status: number | null): void {
    const error = (body as { error?: { code?: unknown; message?: unknown } }).error;
    const code = String(error?.code);
    expect({ where, known: code in ERROR_STATUS }).toEqual({ where, known: true });
    expect({ where, message: typeof error?.message }).toEqual({ where, message: 'string' });
    if (status !== null) {
      expect({ where, status: ERROR_STATUS[code as keyof typeof ERROR_STATUS].status }).toEqual({ where, status });
    }
  }

  /** A 200 stream: every event is JSON; an error event carries a code of the table; it ends with [DONE]. */
  function expectWellFormedStream(where: string, text: string): void {
    const events = text
      .split('\n')
      .filter((line) => line.startsWith('data: '))
      .map((line) => line.slice('data: '.length));
    expect({ where, ends: events.at(-1) }).toEqual({ where, ends: '[DONE]' });
    for (const event of events.slice(0, -1)) {
      let parsed: unknown;
      expect(() => (parsed = JSON.parse(event))).not.toThrow();
      if (parsed && typeof parsed === 'object' && 'error' in parsed) expectTableError(where, parsed, null);
    }
  }

  it('never answers 5xx; errors (in streams too) are the envelope with a code of the table; nothing leaks', async () => {
    await fc.assert(
      fc.asyncProperty(input, async ({ route, method, id, credential, query, body, headers }) => {
        const callsBefore = backendCalls;
        let req = app.http()[method](pathOf(route, id)).query(query);
        for (const [name, value] of Object.entries({ ...headers, ...credentialHeaders(route, credential) })) {
          req = req.set(name, value);
        }
        if (body.kind === 'json') req = req.set('Content-Type', 'application/json').send(JSON.stringify(body.value));
        if (body.kind === 'raw') req = req.set('Content-Type', body.type).send(body.text);
        const res = await req.buffer(true).parse((response, done) => {
          let text = '';
          response.setEncoding('utf8');
          response.on('data', (chunk: string) => (text += chunk));
          response.on('end', () => done(null, text));
        });
        if (route.path.startsWith('/v1/')) {
          reach.v1Cases += 1;
          if (backendCalls > callsBefore) reach.reachedBackend += 1;
        }
        const text = typeof res.body === 'string' ? res.body : ''; // HEAD: no body
        const where = `${method.toUpperCase()} ${route.path} → ${res.status}: ${text.slice(0, 300)}`;
        expect({ where, serverError: res.status >= 500 }).toEqual({ where, serverError: false });
        for (const leak of LEAKS) expect({ where, leak: leak.test(text) }).toEqual({ where, leak: false });
        for (const secret of [TEST_ADMIN_TOKEN, METRICS_TOKEN, clientKey]) {
          expect({ where, secretShown: text.includes(secret) }).toEqual({ where, secretShown: false });
        }
        if (method === 'head' || (res.status < 400 && method === 'options')) return; // no body to read
        if (res.status >= 400 && !route.plain) expectTableError(where, JSON.parse(text), res.status);
        if (res.status === 200 && String(res.headers['content-type']).startsWith('text/event-stream')) {
          expectWellFormedStream(where, text);
        }
      }),
      { numRuns: RUNS, seed: SEED, endOnFailure: true },
    );
    const share = reach.v1Cases === 0 ? 0 : reach.reachedBackend / reach.v1Cases;
    process.stdout.write(
      `fuzz: ${reach.reachedBackend} of ${reach.v1Cases} /v1/* cases reached a backend (${(share * 100).toFixed(0)}%)\n`,
    );
    // The point of valid-then-mutated bodies: the paths behind validation are exercised.
    if (reach.v1Cases >= 30) expect(share).toBeGreaterThanOrEqual(1 / 3);
  }, 600_000);
});
