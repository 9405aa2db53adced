/**
 * Property-based fuzzing of every route (fast-check): arbitrary and hostile bodies, query strings,
 * path parameters and headers, valid-ish and not, with and without valid credentials. Whatever
 * comes in, the answer is never a 5xx, every error is the envelope of API.md with a code of its
 * table, and no answer carries a stack trace, SQL or a secret.
 *
 * `npm test` runs a bounded number of runs with a fixed seed; for a long run:
 *   FUZZ_RUNS=20000 npx jest test/fuzz.e2e-spec.ts            (FUZZ_SEED=<n> to replay a run)
 * The run count and seed are printed.
 */
import fc from 'fast-check';
import { ERROR_STATUS } from '../src/http/core/error-status';
import { startTestApp, type TestApp } from './harness/app';
import { describeInProcess, TEST_ADMIN_TOKEN } from './harness/environment';
import { createKey } from './harness/keys';

const RUNS = Number(process.env.FUZZ_RUNS ?? 400);
const SEED = Number(process.env.FUZZ_SEED ?? 20261202);
const METRICS_TOKEN = 'fuzz-metrics-token-0123456789abcdef';

interface Route {
  method: 'get' | 'post' | 'patch' | 'delete';
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
const KEY_FIELDS = ['name', 'rpm_limit', 'tpm_limit', 'monthly_quota', 'monthly_token_quota', 'models', 'expires_at'];

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
  { method: 'get', path: '/admin/usage', auth: 'admin', fields: [] },
  { method: 'get', path: '/admin/models', auth: 'admin', fields: [] },
  { method: 'get', path: '/admin/ui', auth: 'none', fields: [], plain: true },
  { method: 'get', path: '/admin/ui/*path', auth: 'none', fields: [], plain: true },
  { method: 'get', path: '/healthz', auth: 'none', fields: [] },
  { method: 'get', path: '/readyz', auth: 'none', fields: [], plain: true },
  { method: 'get', path: '/metrics', auth: 'metrics', fields: [], plain: true },
];

/** Strings that have hurt servers: NUL, lone surrogates, huge, SQL, paths, format strings. */
const hostileString = fc.oneof(
  fc.string(),
  fc.string({ unit: 'binary' }),
  fc.constantFrom(
    '\u0000',
    'a\u0000b',
    '\ud800',
    '\udfff',
    "'; DROP TABLE users; --",
    "1' OR '1'='1",
    '../../etc/passwd',
    '%00',
    '%s%s%n',
    '0000-01-01',
    '9999-12-31T23:59:59Z',
    '+275760-09-13T00:00:00Z',
    '__proto__',
    'constructor',
    '-1',
    'NaN',
    'x'.repeat(70_000),
  ),
);

const hostileNumber = fc.oneof(
  fc.integer(),
  fc.double(),
  fc.constantFrom(0, -1, 2 ** 31, 2 ** 53, -(2 ** 63), 1e308, Number.MIN_VALUE),
);

/** A JSON value: anything JSON can say, hostile strings and numbers included. */
const jsonValue: fc.Arbitrary<unknown> = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.constant(null),
    fc.boolean(),
    hostileNumber,
    hostileString,
    fc.array(tie('value'), { maxLength: 5 }),
    fc.dictionary(hostileString, tie('value'), { maxKeys: 5 }),
  ),
})).value;

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
  id: string;
  credential: 'valid' | 'missing' | 'garbage';
  query: Record<string, string>;
  body: { kind: 'none' } | { kind: 'json'; value: unknown } | { kind: 'raw'; text: string; type: string };
  headers: Record<string, string>;
}

describeInProcess('fuzzing every route', 'needs the in-process app and its keys', () => {
  let app: TestApp;
  let clientKey: string;
  let victimId: string;

  beforeAll(async () => {
    app = await startTestApp({ env: { AUTH_FAILURE_LIMIT: '1000000', METRICS_TOKEN, MAX_PROMPT_CHARS: '200000' } });
    clientKey = (await createKey(app, { rpm_limit: 1_000_000 })).key;
    victimId = (await createKey(app, { name: 'victim' })).id;
    process.stdout.write(`fuzz: ${RUNS} runs, seed ${SEED} (FUZZ_RUNS / FUZZ_SEED to change)\n`);
  });
  afterAll(() => app?.close());

  it('the route list covers every route the server has', () => {
    const router = app.app!.getHttpAdapter().getInstance().router as {
      stack: { route?: { path: string; methods: Record<string, boolean> } }[];
    };
    const served = [
      ...new Set(
        router.stack
          .filter((layer) => layer.route && Object.keys(layer.route.methods).length === 1)
          .map((layer) => `${Object.keys(layer.route!.methods)[0]} ${layer.route!.path}`),
      ),
    ].sort();
    expect(ROUTES.map((route) => `${route.method} ${route.path}`).sort()).toEqual(served);
  });

  const input: fc.Arbitrary<Input> = fc.constantFrom(...ROUTES).chain((route) =>
    fc.record({
      route: fc.constant(route),
      id: fc.oneof(
        fc.constant('VICTIM'),
        fc.uuid(),
        hostileString.filter((s) => s.length > 0),
      ),
      credential: fc.constantFrom('valid', 'valid', 'missing', 'garbage'),
      query: fc.dictionary(fc.constantFrom('limit', 'cursor', 'from', 'to', 'q', 'x'), hostileString, {
        maxKeys: 3,
      }),
      body: fc.oneof(
        fc.constant({ kind: 'none' as const }),
        fieldsBody(route).map((value) => ({ kind: 'json' as const, value })),
        jsonValue.map((value) => ({ kind: 'json' as const, value })),
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
      ),
      headers: fc.record(
        {
          'cache-control': fc.constantFrom('no-cache', 'no-store', 'max-age=0, no-store', 'garbage'),
          'x-request-id': headerValue,
          'content-encoding': fc.constantFrom('gzip', 'identity', 'br', 'bogus'),
          'x-forwarded-for': headerValue,
        },
        { requiredKeys: [] },
      ),
    }),
  );

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
    /api_keys|key_usage_daily|key_hash/,
    /QueryFailedError|TypeError|ReferenceError/,
  ];

  it('never answers 5xx; errors are the envelope with a code of the table; nothing leaks', async () => {
    await fc.assert(
      fc.asyncProperty(input, async ({ route, id, credential, query, body, headers }) => {
        let req = app.http()[route.method](pathOf(route, id)).query(query);
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
        const text = res.body as string;
        const where = `${route.method.toUpperCase()} ${route.path} → ${res.status}: ${text.slice(0, 300)}`;
        expect({ where, serverError: res.status >= 500 }).toEqual({ where, serverError: false });
        for (const leak of LEAKS) expect({ where, leak: leak.test(text) }).toEqual({ where, leak: false });
        expect(text.includes(TEST_ADMIN_TOKEN) || text.includes(METRICS_TOKEN)).toBe(false);
        if (res.status >= 400 && !route.plain) {
          const { error } = JSON.parse(text) as { error: { code: string; message: string; type: string } };
          expect(Object.keys(ERROR_STATUS)).toContain(error.code);
          expect({ where, status: ERROR_STATUS[error.code as keyof typeof ERROR_STATUS].status }).toEqual({
            where,
            status: res.status,
          });
          expect(typeof error.message).toBe('string');
        }
      }),
      { numRuns: RUNS, seed: SEED, endOnFailure: true },
    );
  }, 600_000);
});
