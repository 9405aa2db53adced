/**
 * What the admin console needs from the server besides the key routes: GET /admin/keys?q=
 * (search by name or prefix, with cursor paging), GET /admin/usage (all keys per day and model),
 * GET /admin/models (the registry with upstream states), and the console's static files at
 * /admin/ui with their own Content-Security-Policy.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Response } from 'express';
import { AppError } from '../src/contracts/app-error';
import { CONSOLE_ROOT, ConsoleAssets } from '../src/modules/console/console-assets';
import { ConsoleController } from '../src/http/admin/console.controller';
import { startTestApp, type TestApp } from './harness/app';
import { describeInProcess, isRemote } from './harness/environment';
import { adminAuth, createKey, modelNames } from './harness/keys';
import { closedPortUrl } from './fakes/fake-server';
import { FakeVllm } from './fakes/fake-vllm';

jest.setTimeout(30_000);

interface KeyRow {
  id: string;
  name: string;
  key_prefix: string;
}

function expectError(res: { status: number; body: any }, status: number, code: string, param?: string): void {
  expect(res.status).toBe(status);
  expect(res.body.error.code).toBe(code);
  if (param !== undefined) expect(res.body.error.param).toBe(param);
}

/** Every page of GET /admin/keys for `query`, following next_cursor. */
async function allPages(app: TestApp, query: Record<string, string>): Promise<{ pages: KeyRow[][] }> {
  const pages: KeyRow[][] = [];
  let cursor: string | null = null;
  do {
    const res: { status: number; body: { data: KeyRow[]; next_cursor: string | null } } = await app
      .http()
      .get('/admin/keys')
      .query({ ...query, ...(cursor ? { cursor } : {}) })
      .set(...adminAuth());
    expect(res.status).toBe(200);
    pages.push(res.body.data);
    cursor = res.body.next_cursor;
  } while (cursor && pages.length < 50);
  return { pages };
}

/** The default test app, for the search and usage routes (each other describe needs its own). */
let app: TestApp;
beforeAll(async () => {
  app = await startTestApp();
}, 60_000);
afterAll(() => app.close());

describe('GET /admin/keys?q= (search by name or prefix)', () => {
  /** Marks this run's keys, so the search tests hold against a server with other keys too. */
  const tag = randomBytes(4).toString('hex');

  const search = async (q: string, limit = 100): Promise<KeyRow[]> => {
    const { pages } = await allPages(app, { q, limit: String(limit) });
    return pages.flat();
  };

  it('finds keys whose name contains q, ignoring case', async () => {
    const alpha = await createKey(app, { name: `Alpha Team ${tag}` });
    const beta = await createKey(app, { name: `beta ${tag}` });
    expect((await search(`alpha team ${tag}`)).map((k) => k.id)).toEqual([alpha.id]);
    expect((await search(`TEAM ${tag.toUpperCase()}`)).map((k) => k.id)).toEqual([alpha.id]);
    expect((await search(tag)).map((k) => k.id)).toEqual(expect.arrayContaining([alpha.id, beta.id]));
  });

  it('finds a key by the start of its prefix, and only by its start', async () => {
    const key = await createKey(app, { name: `by prefix ${tag}` });
    const prefix = key.view.key_prefix as string;
    expect((await search(prefix)).map((k) => k.id)).toEqual([key.id]);
    const found = await search(prefix.slice(0, 8));
    expect(found.map((k) => k.id)).toContain(key.id);
    for (const row of found)
      expect(row.key_prefix.startsWith(prefix.slice(0, 8)) || row.name.includes(prefix)).toBe(true);
    // The middle of a prefix is not its start.
    expect((await search(prefix.slice(3))).map((k) => k.id)).not.toContain(key.id);
  });

  it('takes %, _ and \\ in q literally (no LIKE wildcards)', async () => {
    const literal = await createKey(app, { name: `50%_off ${tag}` });
    const lookalike = await createKey(app, { name: `50ab-off ${tag}` });
    const backslash = await createKey(app, { name: `back\\slash ${tag}` });
    expect((await search(`50%_off ${tag}`)).map((k) => k.id)).toEqual([literal.id]);
    expect((await search(`k\\s`)).map((k) => k.id)).toContain(backslash.id);
    for (const row of await search('_')) expect(row.name.includes('_') || row.key_prefix.startsWith('_')).toBe(true);
    for (const row of await search('%')) expect(row.name).toContain('%');
    expect((await search('%')).map((k) => k.id)).not.toContain(lookalike.id);
  });

  it('pages through the matches with the cursor: each match once, in creation order, nothing else', async () => {
    const pageTag = `paged-${tag}`;
    const created: string[] = [];
    for (let i = 0; i < 5; i += 1) {
      created.push((await createKey(app, { name: `${pageTag} ${i}` })).id);
      app.clock.advance(1);
      // Keys that must not match, created in between.
      await createKey(app, { name: `other ${tag} ${i}` });
      app.clock.advance(1);
    }
    const { pages } = await allPages(app, { q: pageTag, limit: '2' });
    expect(pages.map((page) => page.length)).toEqual([2, 2, 1]);
    expect(pages.flat().map((k) => k.id)).toEqual(created);
  });

  it('an empty q is no filter', async () => {
    const res = await app
      .http()
      .get('/admin/keys?q=&limit=1')
      .set(...adminAuth())
      .expect(200);
    expect(res.body.data).toHaveLength(1);
  });

  it('rejects a repeated, overlong or NUL-holding q with 400 naming q', async () => {
    for (const query of ['q=a&q=b', `q=${'x'.repeat(201)}`, 'q=a%00b']) {
      expectError(
        await app
          .http()
          .get(`/admin/keys?${query}`)
          .set(...adminAuth()),
        400,
        'invalid_request',
        'q',
      );
    }
  });
});

describe('GET /admin/usage (all keys, per UTC day and model)', () => {
  it('needs the admin token', async () => {
    expectError(await app.http().get('/admin/usage'), 401, 'missing_admin_token');
    expectError(
      await app.http().get('/admin/usage').set('Authorization', 'Bearer not-the-token'),
      401,
      'invalid_admin_token',
    );
  });

  it('defaults to the 30 days ending today (UTC, by the server clock) and names them', async () => {
    const res = await app
      .http()
      .get('/admin/usage')
      .set(...adminAuth())
      .expect(200);
    const today = app.clock.now().toISOString().slice(0, 10);
    expect(res.body.to).toBe(today);
    expect(Date.parse(res.body.to) - Date.parse(res.body.from)).toBe(29 * 86_400_000);
    expect(Array.isArray(res.body.data)).toBe(true);
  });

  it('rejects bad days with 400 naming them', async () => {
    for (const [query, param] of [
      ['from=2026-02-30', 'from'],
      ['to=yesterday', 'to'],
      ['from=2026-11-02&to=2026-11-01', 'from'],
    ]) {
      expectError(
        await app
          .http()
          .get(`/admin/usage?${query}`)
          .set(...adminAuth()),
        400,
        'invalid_request',
        param,
      );
    }
  });

  describeInProcess('sums', 'needs the fake clock to place usage on chosen days', () => {
    it('sums every key per day and model, cached requests and tokens included', async () => {
      const [modelA, modelB] = await modelNames(app);
      const first = await createKey(app, { rpm_limit: 1000 });
      const second = await createKey(app, { rpm_limit: 1000 });
      const generate = async (key: string, model: string, prompt: string) => {
        const res = await app.http().post('/v1/generate').set('X-API-Key', key).send({ model, prompt });
        expect(res.status).toBe(200);
        return res.body as { cached: boolean; usage: { prompt_tokens: number; completion_tokens: number } };
      };
      app.clock.set('2026-10-05T10:00:00Z');
      const answers = [
        await generate(first.key, modelA, 'one'),
        await generate(second.key, modelA, 'two'),
        await generate(second.key, modelA, 'two'), // the same request again: a cache hit
      ];
      app.clock.set('2026-10-06T23:59:00Z');
      const later = await generate(first.key, modelB, 'three');
      expect(answers[2].cached).toBe(true);

      const res = await app
        .http()
        .get('/admin/usage?from=2026-10-01&to=2026-10-31')
        .set(...adminAuth())
        .expect(200);
      const sum = (list: typeof answers, field: 'prompt_tokens' | 'completion_tokens') =>
        list.reduce((total, answer) => total + answer.usage[field], 0);
      expect(res.body).toEqual({
        from: '2026-10-01',
        to: '2026-10-31',
        data: [
          {
            date: '2026-10-05',
            model: modelA,
            requests: 3,
            cached_requests: 1,
            prompt_tokens: sum(answers, 'prompt_tokens'),
            completion_tokens: sum(answers, 'completion_tokens'),
            cost: 0, // the fixture models have no prices
          },
          {
            date: '2026-10-06',
            model: modelB,
            requests: 1,
            cached_requests: 0,
            prompt_tokens: later.usage.prompt_tokens,
            completion_tokens: later.usage.completion_tokens,
            cost: 0,
          },
        ],
      });
      const oneDay = await app
        .http()
        .get('/admin/usage?from=2026-10-06&to=2026-10-06')
        .set(...adminAuth())
        .expect(200);
      expect(oneDay.body.data.map((row: { date: string }) => row.date)).toEqual(['2026-10-06']);
    });
  });
});

describe('GET /admin/models (the registry with upstream states)', () => {
  let models: TestApp;
  let vllm: FakeVllm | null = null;
  let closed = '';

  beforeAll(async () => {
    if (isRemote) {
      models = app;
      return;
    }
    vllm = await FakeVllm.start();
    closed = await closedPortUrl();
    models = await startTestApp({
      modelsYaml: `default_model: mock-a
models:
  - name: mock-a
    provider: mock
  - name: vllm-m
    provider: vllm
    upstream_model: meta/m
    required: true
    fallbacks: [mock-a]
    upstreams:
      - base_url: ${closed}
      - base_url: ${vllm.url}
        weight: 3
  - name: offline
    provider: ollama
    upstream_model: llama3
    base_url: ${closed}
`,
    });
  }, 60_000);
  afterAll(async () => {
    if (models !== app) await models?.close();
    await vllm?.close();
  });

  it('needs the admin token', async () => {
    expectError(await models.http().get('/admin/models'), 401, 'missing_admin_token');
  });

  it('lists every configured model with its settings and readiness', async () => {
    const res = await models
      .http()
      .get('/admin/models')
      .set(...adminAuth())
      .expect(200);
    const names = await modelNames(models);
    expect(res.body.data.map((m: { name: string }) => m.name)).toEqual(names);
    expect(res.body.default_model).toBe(res.body.data.find((m: { default: boolean }) => m.default).name);
    expect(Number.isNaN(Date.parse(res.body.checked_at))).toBe(false);
    for (const model of res.body.data) {
      expect(model).toEqual({
        name: expect.any(String),
        provider: expect.stringMatching(/^(vllm|ollama|openai|llama-cpp|mock)$/),
        kind: expect.stringMatching(/^(embedded|remote)$/),
        upstream_model: expect.any(String),
        default: expect.any(Boolean),
        required: expect.any(Boolean),
        fallbacks: expect.any(Array),
        max_new_tokens: expect.any(Number),
        default_max_new_tokens: expect.any(Number),
        timeout_ms: expect.any(Number),
        ready: model.upstreams.some((u: { state: string }) => u.state === 'up'),
        upstreams: expect.any(Array),
      });
    }
  });

  describeInProcess('upstream states', 'needs fake backends', () => {
    it('probes each upstream now: host:port, weight, up or down with the reason, never a URL', async () => {
      const res = await models
        .http()
        .get('/admin/models')
        .set(...adminAuth())
        .expect(200);
      const byName = Object.fromEntries(res.body.data.map((m: { name: string }) => [m.name, m]));
      const host = (url: string) => new URL(url).host;
      expect(byName['mock-a']).toMatchObject({ kind: 'embedded', provider: 'mock', ready: true, default: true });
      expect(byName['mock-a'].upstreams).toEqual([
        { upstream: 'mock', weight: 1, state: 'up', breaker: 'closed', latency_ms: expect.any(Number), reason: null },
      ]);
      expect(byName['vllm-m']).toMatchObject({
        kind: 'remote',
        provider: 'vllm',
        upstream_model: 'meta/m',
        required: true,
        fallbacks: ['mock-a'],
        ready: true,
      });
      expect(byName['vllm-m'].upstreams).toEqual([
        {
          upstream: host(closed),
          weight: 1,
          state: 'down',
          breaker: 'closed',
          latency_ms: expect.any(Number),
          reason: 'unreachable',
        },
        {
          upstream: host(vllm!.url),
          weight: 3,
          state: 'up',
          breaker: 'closed',
          latency_ms: expect.any(Number),
          reason: null,
        },
      ]);
      expect(byName.offline).toMatchObject({ ready: false, upstreams: [{ state: 'down', reason: 'unreachable' }] });
      expect(JSON.stringify(res.body)).not.toMatch(/https?:\/\//);
      // A probe, not a generation: the fake backend saw only its health endpoint.
      expect(vllm!.requests.length).toBeGreaterThan(0);
      expect(new Set(vllm!.requests.map((r) => r.path))).toEqual(new Set(['/health']));
    });

    it('shows a backend that went down on the next call', async () => {
      vllm!.setHealth(503);
      try {
        const res = await models
          .http()
          .get('/admin/models')
          .set(...adminAuth())
          .expect(200);
        const model = res.body.data.find((m: { name: string }) => m.name === 'vllm-m');
        expect(model.ready).toBe(false);
        expect(model.upstreams[1]).toMatchObject({ state: 'down', reason: expect.stringMatching(/503/) });
      } finally {
        vllm!.setHealth(200);
      }
    });
  });
});

describe('GET /admin/ui (the console page and its files)', () => {
  const CSP_DIRECTIVES = [
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "connect-src 'self'",
    "img-src 'self'",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
    "require-trusted-types-for 'script'",
  ];

  function expectConsoleCsp(header: string | undefined): void {
    const directives = (header ?? '').split(/;\s*/);
    for (const directive of CSP_DIRECTIVES) expect(directives).toContain(directive);
    // Nothing inline, nothing evaluated, no other origin.
    expect(header).not.toMatch(/unsafe-|data:|https?:|\*/);
  }

  describeInProcess('a build with known files', 'serves a console build of the test’s own', () => {
    let ui: TestApp;
    beforeAll(async () => {
      const root = mkdtempSync(join(tmpdir(), 'llm-console-fixture-'));
      mkdirSync(join(root, 'assets'));
      writeFileSync(join(root, 'index.html'), '<!doctype html><title>console</title>');
      writeFileSync(join(root, 'assets', 'index-abc123.js'), 'console.log(1)');
      writeFileSync(join(root, 'assets', 'index-abc123.css'), 'body{}');
      writeFileSync(join(root, 'favicon.svg'), '<svg xmlns="http://www.w3.org/2000/svg"/>');
      writeFileSync(join(root, 'notes.unknown'), 'not a known file type');
      ui = await startTestApp({ override: (builder) => builder.overrideProvider(CONSOLE_ROOT).useValue(root) });
    }, 60_000);
    afterAll(() => ui.close());

    it('serves the page without a token, with the console CSP, revalidated on every load', async () => {
      for (const path of ['/admin/ui', '/admin/ui/']) {
        const res = await ui.http().get(path).expect(200);
        expect(res.headers['content-type']).toBe('text/html; charset=utf-8');
        expect(res.text).toBe('<!doctype html><title>console</title>');
        expect(res.headers['cache-control']).toBe('no-cache');
        expect(res.headers['x-content-type-options']).toBe('nosniff');
        expectConsoleCsp(res.headers['content-security-policy']);
      }
    });

    it('serves hashed assets as immutable, with their content types', async () => {
      const js = await ui.http().get('/admin/ui/assets/index-abc123.js').expect(200);
      expect(js.headers['content-type']).toBe('text/javascript; charset=utf-8');
      expect(js.headers['cache-control']).toBe('public, max-age=31536000, immutable');
      const css = await ui.http().get('/admin/ui/assets/index-abc123.css').expect(200);
      expect(css.headers['content-type']).toBe('text/css; charset=utf-8');
      const icon = await ui.http().get('/admin/ui/favicon.svg').expect(200);
      expect(icon.headers['content-type']).toBe('image/svg+xml');
      expect(icon.headers['cache-control']).toBe('no-cache');
    });

    it('answers 404 in the error envelope for anything else, path tricks included', async () => {
      for (const path of [
        '/admin/ui/assets/missing.js',
        '/admin/ui/notes.unknown',
        '/admin/ui/..%2f..%2fpackage.json',
        '/admin/ui/%2e%2e/%2e%2e/package.json',
        '/admin/ui/assets/..%2f..%2f..%2fpackage.json',
        '/admin/ui/index.html%00.js',
      ]) {
        const res = await ui.http().get(path);
        expectError(res, 404, 'not_found');
        expect(res.body.error.message).toBe('no such file in the admin console');
      }
    });

    it('leaves the API’s own policy alone', async () => {
      const res = await ui.http().get('/healthz').expect(200);
      expect(res.headers['content-security-policy']).toMatch(/^default-src 'none'/);
      expect(res.headers['content-security-policy']).not.toContain('require-trusted-types-for');
    });
  });

  it('without a build, says the console is not built', () => {
    const controller = new ConsoleController(new ConsoleAssets(join(tmpdir(), 'no-such-console-build')));
    const send = jest.fn();
    let thrown: unknown = null;
    try {
      controller.page({ send } as unknown as Response);
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(AppError);
    expect(thrown).toMatchObject({
      code: 'not_found',
      message: expect.stringMatching(/not built: run `npm run build`/),
    });
    expect(send).not.toHaveBeenCalled();
  });

  (isRemote ? describe : describe.skip)(
    `the running server's build${isRemote ? '' : ' [skipped: runs with API_BASE, against the server’s own npm run build]'}`,
    () => {
      it('serves the built page, whose script and stylesheet load from this origin', async () => {
        const page = await app.http().get('/admin/ui').expect(200);
        expectConsoleCsp(page.headers['content-security-policy']);
        const assets = [...page.text.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1]);
        expect(assets.filter((a) => a.endsWith('.js'))).toHaveLength(1);
        expect(assets.filter((a) => a.endsWith('.css'))).toHaveLength(1);
        expect(page.text).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>|<style|\sstyle=/);
        for (const asset of assets) {
          expect(asset.startsWith('/admin/ui/')).toBe(true);
          await app.http().get(asset).expect(200);
        }
      });
    },
  );
});
