/**
 * The admin console in a real browser: Debian's Chromium driven by playwright-core, against a
 * listening server (in-process, or API_BASE). One operator's session, step by step: a wrong
 * token, sign-in, creating a key and copying it once, using it, seeing its usage in the charts,
 * changing its RPM until the API answers 429, rotating, revoking, a hostile key name, search and
 * paging, the models page, a team (created, a key with a budget in it, its spend in the budget
 * bars and charts, a team limit the API enforces, delete refused while the key belongs), sign-out;
 * then screenshots of the main pages at 1280×800 and 390 wide. Throughout, the page may talk to its own origin only, with the token in a header, and
 * must trip no Content-Security-Policy or Trusted Types check.
 *
 * Needs /usr/bin/chromium (.ci/run installs it). Without it the file fails under CI=true and is
 * skipped, saying why, elsewhere.
 */
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { type BrowserContext, chromium, type Locator, type Page } from 'playwright-core';
import { CONSOLE_ROOT } from '../../src/modules/console/console-assets';
import { startTestApp, type TestApp } from '../harness/app';
import { API_BASE, isRemote, TEST_ADMIN_TOKEN } from '../harness/environment';
import { adminAuth, createKey, modelNames } from '../harness/keys';
import { listenOnLoopback } from '../harness/listen';
import { FakeClock } from '../harness/fake-clock';
import { closedPortUrl } from '../fakes/fake-server';

const CHROMIUM = '/usr/bin/chromium';
const ROOT = resolve(__dirname, '..', '..');
/** Where the screenshots go; CONSOLE_SCREENSHOTS_DIR=docs/console refreshes the ones docs/api-guide.md shows. */
const SCREENSHOTS = resolve(ROOT, process.env.CONSOLE_SCREENSHOTS_DIR ?? 'test-output/console');

jest.setTimeout(60_000);

function describeInBrowser(name: string, fn: () => void): void {
  if (existsSync(CHROMIUM)) {
    describe(name, fn);
  } else if (process.env.CI) {
    describe(name, () => {
      it(`needs Chromium at ${CHROMIUM}`, () => {
        throw new Error(`${CHROMIUM} is missing: CI must install it (.ci/run runs apt-get install chromium)`);
      });
    });
  } else {
    const reason = `${CHROMIUM} is missing — install Debian's chromium (apt-get install chromium) to run it`;
    console.warn(`test/console.e2e-spec.ts skipped: ${reason}`);
    describe.skip(`${name} [skipped: ${reason}]`, fn);
  }
}

function consoleSources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory() ? consoleSources(join(dir, entry.name)) : [join(dir, entry.name)],
  );
}

/**
 * The console built from the current sources: once per change of them (a hash of console/ names
 * the build in node_modules/.cache), so repeated runs skip the Vite build.
 */
function buildConsole(): string {
  const hash = createHash('sha256');
  for (const file of consoleSources(join(ROOT, 'console')).sort()) hash.update(file).update(readFileSync(file));
  const outDir = join(ROOT, 'node_modules', '.cache', 'llm-server-console-build', hash.digest('hex').slice(0, 16));
  if (existsSync(join(outDir, 'index.html'))) return outDir;
  const partial = mkdtempSync(join(tmpdir(), 'llm-console-build-'));
  const vite = join(ROOT, 'node_modules', 'vite', 'bin', 'vite.js');
  const result = spawnSync(
    process.execPath,
    [vite, 'build', '--config', 'console/vite.config.mts', '--outDir', partial, '--emptyOutDir'],
    { cwd: ROOT, encoding: 'utf8' },
  );
  if (result.status !== 0) throw new Error(`vite build failed:\n${result.stdout}\n${result.stderr}`);
  mkdirSync(dirname(outDir), { recursive: true });
  cpSync(partial, outDir, { recursive: true });
  return outDir;
}

/**
 * In-process: the fixture's mock models with prices (per million tokens, high enough that a few
 * requests spend visibly), plus a remote one that is down, for the models page.
 */
async function modelsYaml(): Promise<string> {
  return `default_model: mock-a
models:
  - name: mock-a
    provider: mock
    max_new_tokens: 64
    default_max_new_tokens: 16
    pricing: { input: 150, output: 600 }
  - name: mock-b
    provider: mock
    max_new_tokens: 64
    default_max_new_tokens: 16
    pricing: { input: 300, output: 1200, cached_input: 75 }
  - name: vllm-offline
    provider: vllm
    upstream_model: meta-llama/Meta-Llama-3-8B-Instruct
    upstreams:
      - base_url: ${await closedPortUrl()}
`;
}

/** Waits until the element's text is `text` (the page updates after its API calls answer). */
async function expectText(locator: Locator, text: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last: string | null = null;
  while (Date.now() < deadline) {
    last = await locator.textContent({ timeout: Math.max(1, deadline - Date.now()) }).catch(() => null);
    if (last === text) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`expected the text ${JSON.stringify(text)}; last seen ${JSON.stringify(last)}`);
}

const HOSTILE_NAME = '<img src=x onerror=alert(1)>';
const tag = randomBytes(3).toString('hex');

describeInBrowser('the admin console at /admin/ui, in Chromium', () => {
  let app: TestApp;
  let base: string;
  let buildDir: string | null = null;
  let profile: string;
  let context: BrowserContext;
  let page: Page;
  let model: string;
  /** Everything the browser asked for, and anything that went wrong on the page. */
  const requests: { url: string; authorization: string | undefined }[] = [];
  const problems: string[] = [];
  const dialogs: string[] = [];
  /** The key the session creates, and its plaintexts. */
  let keyId = '';
  let firstKey = '';
  let rotatedKey = '';

  const today = (): string => (isRemote ? new Date() : app.clock.now()).toISOString().slice(0, 10);
  const generate = (key: string, prompt: string) =>
    app.http().post('/v1/generate').set('X-API-Key', key).set('Cache-Control', 'no-store').send({ model, prompt });

  beforeAll(async () => {
    if (isRemote) {
      app = await startTestApp();
      base = API_BASE!;
    } else {
      buildDir = buildConsole();
      app = await startTestApp({
        // The server's clock is fixed at the real time; the browser's is set to the same instant.
        clock: new FakeClock(new Date()),
        modelsYaml: await modelsYaml(),
        override: (builder) => builder.overrideProvider(CONSOLE_ROOT).useValue(buildDir),
      });
      base = await listenOnLoopback(app);
    }
    model = (await modelNames(app))[0];
    profile = mkdtempSync(join(tmpdir(), 'llm-console-chromium-'));
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      viewport: { width: 1280, height: 800 },
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
    await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: base });
    // Recorded outside the page (an init script is not subject to its CSP).
    await context.addInitScript(
      "document.addEventListener('securitypolicyviolation', (e) => console.error('CSP violation: ' + e.violatedDirective + ' ' + e.blockedURI));",
    );
    page = context.pages()[0] ?? (await context.newPage());
    if (!isRemote) await page.clock.setFixedTime(app.clock.now());
    page.on('request', (req) => requests.push({ url: req.url(), authorization: req.headers().authorization }));
    page.on('console', (message) => {
      if (message.type() === 'error' || message.type() === 'warning') problems.push(`console: ${message.text()}`);
    });
    page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
    page.on('dialog', (dialog) => {
      dialogs.push(dialog.message());
      void dialog.dismiss();
    });
  }, 120_000);

  afterAll(async () => {
    await context?.close();
    await app?.close();
    if (profile) rmSync(profile, { recursive: true, force: true });
  });

  const storage = (): Promise<{ session: number; local: number; token: string | null; cookies: string }> =>
    page.evaluate(`({
      session: sessionStorage.length,
      local: localStorage.length,
      token: sessionStorage.getItem('llm-server.admin-token'),
      cookies: document.cookie,
    })`);

  async function signIn(token: string): Promise<void> {
    await page.goto(`${base}/admin/ui`);
    await page.getByLabel('Admin token').fill(token);
    await page.getByRole('button', { name: 'Sign in' }).click();
  }

  /** Opens a key's page, loading it afresh (going to the URL it is on would not reload it). */
  async function openKey(id: string): Promise<void> {
    const url = `${base}/admin/ui#/keys/${id}`;
    if (page.url() === url) await page.reload();
    else await page.goto(url);
    await page.locator('h1.key-title').waitFor();
  }

  /** The value a chart shows for one day and model (0 when it draws no bar). */
  async function barValue(chart: string, day: string, modelName: string): Promise<number> {
    const bar = page.locator(`[data-chart="${chart}"] rect[data-date="${day}"][data-model="${modelName}"]`);
    return (await bar.count()) === 0 ? 0 : Number(await bar.getAttribute('data-value'));
  }

  it('refuses a wrong token with the API’s own error, and stores nothing', async () => {
    const api = await app.http().get('/admin/keys?limit=1').set('Authorization', 'Bearer wrong-token');
    expect(api.body.error.code).toBe('invalid_admin_token');
    await signIn('wrong-token');
    const alert = page.getByRole('alert');
    await expect(alert.locator('.error-code').textContent()).resolves.toBe('invalid_admin_token');
    await expect(alert.locator('.error-message').textContent()).resolves.toBe(api.body.error.message);
    expect(await storage()).toEqual({ session: 0, local: 0, token: null, cookies: '' });
    await expect(page.getByLabel('Admin token').isVisible()).resolves.toBe(true);
    // Chromium logs the refused call itself; that is the only thing wrong so far.
    expect(problems).toEqual([expect.stringMatching(/status of 401/)]);
    problems.length = 0;
  });

  it('signs in: the token is kept in sessionStorage only and sent as a header, never in a URL', async () => {
    const before = requests.length;
    await signIn(TEST_ADMIN_TOKEN);
    await page.getByRole('heading', { name: 'Overview' }).waitFor();
    await page.locator('[data-stat="models-ready"] a').waitFor();
    expect(await storage()).toEqual({ session: 1, local: 0, token: TEST_ADMIN_TOKEN, cookies: '' });
    const apiCalls = requests.slice(before).filter((r) => !new URL(r.url).pathname.startsWith('/admin/ui'));
    // The token check, the model names, the overview's usage and models.
    expect(apiCalls.map((r) => new URL(r.url).pathname)).toEqual(
      expect.arrayContaining(['/admin/keys', '/admin/models', '/admin/usage']),
    );
    for (const call of apiCalls) expect(call.authorization).toBe(`Bearer ${TEST_ADMIN_TOKEN}`);
    for (const r of requests) expect(decodeURIComponent(r.url)).not.toContain(TEST_ADMIN_TOKEN);
  });

  it('creates a key: the plaintext is shown once, with a warning and a copy button', async () => {
    await page.getByRole('link', { name: 'Keys', exact: true }).click();
    await page.getByRole('link', { name: 'New key' }).click();
    await page.getByLabel('Name').fill(`console key ${tag}`);
    await page.getByRole('button', { name: 'Create key' }).click();
    const secret = page.getByLabel('New API key');
    await secret.waitFor();
    firstKey = await secret.inputValue();
    expect(firstKey).toMatch(/^sk-[A-Za-z0-9_-]{43}$/);
    keyId = new URL(page.url()).hash.split('/')[2];
    await expect(page.getByRole('note').textContent()).resolves.toMatch(/only time the key is shown/);

    await page.getByRole('button', { name: 'Copy', exact: true }).click();
    await page.getByText('Copied to the clipboard.').waitFor();
    expect(await page.evaluate('navigator.clipboard.readText()')).toBe(firstKey);

    const stored = await app
      .http()
      .get(`/admin/keys/${keyId}`)
      .set(...adminAuth())
      .expect(200);
    expect(firstKey.startsWith(stored.body.key_prefix)).toBe(true);

    await page.getByRole('button', { name: 'I have stored it' }).click();
    await expect(secret.count()).resolves.toBe(0);
    expect(await page.content()).not.toContain(firstKey);
    // Nor does it come back: it was never stored anywhere the page can read again.
    await page.reload();
    await page.locator('h1.key-title').waitFor();
    expect(await page.content()).not.toContain(firstKey);
    expect(JSON.stringify(await storage())).not.toContain(firstKey);
  });

  it('the key works with /v1/generate, and its usage appears in the charts', async () => {
    const answer = await generate(firstKey, 'hello from the console test');
    expect(answer.status).toBe(200);
    const tokens = answer.body.usage.prompt_tokens + answer.body.usage.completion_tokens;
    await openKey(keyId);
    await page.locator('[data-chart="requests"] rect.bar').first().waitFor();
    expect(await barValue('requests', today(), model)).toBe(1);
    expect(await barValue('tokens', today(), model)).toBe(tokens);
    expect(await barValue('cached', today(), model)).toBe(0);
    await expect(page.locator('[data-quota="requests"] .quota-figures').textContent()).resolves.toMatch(/^1 /);
  });

  it('edits the RPM in the form, and the API enforces it with 429', async () => {
    await openKey(keyId);
    await page.getByLabel('Requests per minute').fill('2');
    await page.getByRole('button', { name: 'Save changes' }).click();
    await page.getByRole('status').filter({ hasText: 'Saved.' }).waitFor();
    const view = await app
      .http()
      .get(`/admin/keys/${keyId}`)
      .set(...adminAuth());
    expect(view.body.rpm_limit).toBe(2);
    // At most 2 per minute: a 429 comes within 5 requests even if a minute boundary (real clock,
    // API_BASE) falls between them. Every answer states the new limit.
    let limited: Awaited<ReturnType<typeof generate>> | null = null;
    for (let i = 0; i < 5 && !limited; i += 1) {
      const res = await generate(firstKey, `rpm check ${i}`);
      expect(res.headers['x-ratelimit-limit']).toBe('2');
      if (res.status === 429) limited = res;
      else expect(res.status).toBe(200);
    }
    expect(limited?.body.error.code).toBe('rate_limit_exceeded');
    expect(Number(limited?.headers['retry-after'])).toBeGreaterThan(0);

    // Clearing the field gives the key the server default again.
    await page.reload();
    await page.getByLabel('Requests per minute').fill('');
    await page.getByRole('button', { name: 'Save changes' }).click();
    await page.getByRole('status').filter({ hasText: 'Saved.' }).waitFor();
    const cleared = await app
      .http()
      .get(`/admin/keys/${keyId}`)
      .set(...adminAuth());
    expect(cleared.body.rpm_limit).toBeNull();
  });

  it('rotates after a confirmation: the old key is refused, the new one works', async () => {
    await openKey(keyId);
    await page.getByRole('button', { name: 'Rotate key' }).click();
    await page.getByText('Rotate this key?').waitFor();
    await page.getByRole('button', { name: 'Yes, rotate' }).click();
    const secret = page.getByLabel('New API key');
    await secret.waitFor();
    rotatedKey = await secret.inputValue();
    expect(rotatedKey).toMatch(/^sk-/);
    expect(rotatedKey).not.toBe(firstKey);
    expect((await app.http().get('/v1/models').set('X-API-Key', firstKey)).status).toBe(401);
    expect((await app.http().get('/v1/models').set('X-API-Key', rotatedKey)).status).toBe(200);
    await page.getByRole('button', { name: 'I have stored it' }).click();
  });

  it('revokes after a confirmation: the key stops working and its page turns read-only', async () => {
    await openKey(keyId);
    await page.getByRole('button', { name: 'Revoke key' }).click();
    await page.getByText('Revoke this key?').waitFor();
    await page.getByRole('button', { name: 'Yes, revoke' }).click();
    await page.getByText(/A revoked key is read-only/).waitFor();
    expect((await app.http().get('/v1/models').set('X-API-Key', rotatedKey)).status).toBe(401);
    await expect(page.locator('.badge-revoked').first().textContent()).resolves.toBe('revoked');
    await expect(page.locator('form.key-form').count()).resolves.toBe(0);
    await expect(page.locator('main input, main select, main button').count()).resolves.toBe(0);
    await expect(page.locator('dl.fields [data-field="name"] dd').textContent()).resolves.toBe(`console key ${tag}`);
  });

  it('shows and edits scheduling fields (max_concurrent, priority, weight) only when keys have them', async () => {
    const key = await createKey(app, { name: `scheduling ${tag}` });
    await openKey(key.id);
    const fieldNames = () =>
      page.locator('form.key-form [data-field]').evaluateAll((els) => els.map((el) => el.getAttribute('data-field')));
    const withoutThem = await fieldNames();
    for (const name of ['max_concurrent', 'priority', 'weight'])
      expect(withoutThem.includes(name)).toBe(name in key.view);

    // A server whose keys carry the fields (API.md): answered here for this key, the PATCH captured.
    const path = `/admin/keys/${key.id}`;
    const scheduling = { max_concurrent: null, priority: 'normal', weight: 1 };
    let patched: Record<string, unknown> | null = null;
    await page.route(`${base}${path}`, async (route) => {
      if (route.request().method() === 'PATCH') {
        patched = route.request().postDataJSON();
        await route.fulfill({ json: { ...key.view, ...scheduling, ...patched } });
        return;
      }
      const real = await route.fetch();
      await route.fulfill({ response: real, json: { ...(await real.json()), ...scheduling } });
    });
    try {
      await page.reload();
      await page.getByLabel('Concurrent generations').waitFor();
      expect(await fieldNames()).toEqual(expect.arrayContaining(['max_concurrent', 'priority', 'weight']));
      await expect(page.getByLabel('Priority').inputValue()).resolves.toBe('normal');
      await page.getByLabel('Concurrent generations').fill('3');
      await page.getByLabel('Priority').selectOption('high');
      await page.getByLabel('Weight').fill('5');
      await page.getByRole('button', { name: 'Save changes' }).click();
      await page.getByRole('status').filter({ hasText: 'Saved.' }).waitFor();
      // Only what changed is sent.
      expect(patched).toEqual({ max_concurrent: 3, priority: 'high', weight: 5 });

      // Out-of-range values are caught in the form, before any request.
      patched = null;
      await page.getByLabel('Weight').fill('101');
      await page.getByRole('button', { name: 'Save changes' }).click();
      await page.getByText('Must be between 1 and 100.').waitFor();
      expect(patched).toBeNull();
    } finally {
      await page.unroute(`${base}${path}`);
    }
  });

  it('renders a hostile key name as text: no element, no script, no dialog', async () => {
    await page.goto(`${base}/admin/ui#/keys/new`);
    await page.getByLabel('Name').fill(HOSTILE_NAME);
    await page.getByRole('button', { name: 'Create key' }).click();
    await page.locator('h1.key-title').waitFor();
    await expect(page.locator('h1.key-title').textContent()).resolves.toBe(HOSTILE_NAME);
    await expect(page.locator('img').count()).resolves.toBe(0);

    await page.getByRole('link', { name: 'Keys', exact: true }).click();
    await page.getByLabel('Search by name or prefix').fill('onerror=alert');
    const link = page.locator('a.key-name', { hasText: HOSTILE_NAME });
    await link.first().waitFor();
    await expect(link.first().textContent()).resolves.toBe(HOSTILE_NAME);
    await expect(page.locator('img').count()).resolves.toBe(0);
    await page.waitForTimeout(300);
    expect(dialogs).toEqual([]);
  });

  it('searches by name and by prefix, and pages through the matches', async () => {
    const pageTag = `paged ${tag}`;
    const created = [];
    for (let i = 0; i < 23; i += 1) {
      created.push(await createKey(app, { name: `${pageTag} ${String(i).padStart(2, '0')}` }));
      // The listing is in creation order; the fake clock must move for there to be one.
      if (!isRemote) app.clock.advance(1);
    }
    await page.goto(`${base}/admin/ui#/keys`);
    const search = page.getByLabel('Search by name or prefix');
    await search.fill(pageTag);
    const rows = page.locator('table.keys tbody tr');
    await page.getByText('Page 1').waitFor();
    await expectText(rows.first().locator('a.key-name'), `${pageTag} 00`);
    expect(await rows.count()).toBe(20);
    await page.getByRole('button', { name: 'Next' }).click();
    await page.getByText('Page 2').waitFor();
    await expectText(rows.first().locator('a.key-name'), `${pageTag} 20`);
    expect(await rows.count()).toBe(3);
    await expect(page.getByRole('button', { name: 'Next' }).isDisabled()).resolves.toBe(true);
    await page.getByRole('button', { name: 'Previous' }).click();
    await page.getByText('Page 1').waitFor();
    await expectText(rows.first().locator('a.key-name'), `${pageTag} 00`);

    const prefix = created[7].view.key_prefix as string;
    await search.fill(prefix);
    await expectText(rows.first().locator('a.key-name'), `${pageTag} 07`);
    expect(await rows.count()).toBe(1);
  });

  it('shows the models with their readiness and upstream states', async () => {
    await page.getByRole('link', { name: 'Models', exact: true }).click();
    await page.locator('article.model').first().waitFor();
    const expected = await app
      .http()
      .get('/admin/models')
      .set(...adminAuth())
      .expect(200);
    for (const m of expected.body.data as {
      name: string;
      ready: boolean;
      upstreams: { upstream: string; state: string; breaker: string }[];
    }[]) {
      const card = page.locator(`article.model[data-model="${m.name}"]`);
      await expect(card.locator('header .badge').first().textContent()).resolves.toBe(m.ready ? 'ready' : 'not ready');
      for (const upstream of m.upstreams) {
        const row = card.locator(`tr[data-upstream="${upstream.upstream}"]`);
        await expect(row.locator('.badge.state').textContent()).resolves.toBe(upstream.state);
        await expect(row.locator('.badge.breaker').textContent()).resolves.toBe(upstream.breaker.replace('_', '-'));
      }
    }
  });

  describe('teams, budgets and spend', () => {
    let teamId = '';
    let teamName = '';
    let teamKeyId = '';
    let teamKey = '';
    const admin = (path: string) =>
      app
        .http()
        .get(path)
        .set(...adminAuth());
    /** The sum of `cost` over usage rows of one day (and model). */
    const rowCost = (rows: { date: string; model: string; cost: number }[], day: string, modelName: string) =>
      rows.filter((r) => r.date === day && r.model === modelName).reduce((sum, r) => sum + r.cost, 0);
    const meter = (id: string) => page.locator(`main [data-quota="${id}"] meter`);
    const meterValue = async (id: string) => Number(await meter(id).getAttribute('value'));

    async function openTeam(id: string): Promise<void> {
      const url = `${base}/admin/ui#/teams/${id}`;
      if (page.url() === url) await page.reload();
      else await page.goto(url);
      await page.locator('h1.team-title').waitFor();
    }

    it('creates a team in the console: Teams in the nav, the new-team form, its page', async () => {
      await page.goto(`${base}/admin/ui#/`);
      await page.getByRole('link', { name: 'Teams', exact: true }).click();
      await page.getByRole('heading', { name: 'Teams' }).waitFor();
      await expect(page.getByRole('link', { name: 'Teams', exact: true }).getAttribute('aria-current')).resolves.toBe(
        'page',
      );
      await page.getByRole('link', { name: 'New team' }).click();
      teamName = `console team ${tag}`;
      await page.getByLabel('Name').fill(teamName);
      // The budget's unit is the server's CURRENCY, as GET /admin/models names it.
      const { currency } = (await admin('/admin/models').expect(200)).body;
      await expect(page.locator('label[for="field-monthly_budget"]').textContent()).resolves.toBe(
        `Budget per month (${currency})`,
      );
      await page.getByLabel('Budget per month').fill('0.5');
      // Checked in the form, before any request.
      await page.getByLabel('Requests per minute').fill('x');
      await page.getByRole('button', { name: 'Create team' }).click();
      await page.getByText('Must be a whole number.').waitFor();
      await page.getByLabel('Requests per minute').fill('');
      await page.getByRole('button', { name: 'Create team' }).click();
      await page.locator('h1.team-title').waitFor();
      await expect(page.locator('h1.team-title').textContent()).resolves.toBe(teamName);
      teamId = new URL(page.url()).hash.split('/')[2];
      const view = await admin(`/admin/teams/${teamId}`).expect(200);
      expect(view.body).toMatchObject({ name: teamName, monthly_budget: 0.5, rpm_limit: null, key_count: 0 });
      await expect(page.getByRole('link', { name: 'Teams', exact: true }).getAttribute('aria-current')).resolves.toBe(
        'page',
      );
      await page.getByText('No keys in this team.').waitFor();
      await expect(meter('budget').getAttribute('max')).resolves.toBe('0.5');
      await expect(meter('budget').getAttribute('high')).resolves.toBe('0.4');
    });

    it('creates a key in the team with a budget of its own; the key page links its team', async () => {
      await page.goto(`${base}/admin/ui#/keys/new`);
      await page.getByLabel('Name').fill(`team key ${tag}`);
      await page.getByLabel('Team').selectOption({ label: teamName });
      await page.getByLabel('Budget per month').fill('0.25');
      await page.getByRole('button', { name: 'Create key' }).click();
      const secret = page.getByLabel('New API key');
      await secret.waitFor();
      teamKey = await secret.inputValue();
      teamKeyId = new URL(page.url()).hash.split('/')[2];
      await page.getByRole('button', { name: 'I have stored it' }).click();
      const view = await admin(`/admin/keys/${teamKeyId}`).expect(200);
      expect(view.body).toMatchObject({ team_id: teamId, monthly_budget: 0.25 });
      await expect(page.locator('a.key-team').textContent()).resolves.toBe(teamName);
      await expect(page.locator('a.key-team').getAttribute('href')).resolves.toBe(`#/teams/${teamId}`);
      await expect(page.getByLabel('Team').inputValue()).resolves.toBe(teamId);
      await expect(page.getByLabel('Budget per month').inputValue()).resolves.toBe('0.25');
      await expect(meter('budget').getAttribute('max')).resolves.toBe('0.25');

      // The key list names its team, linked.
      await page.goto(`${base}/admin/ui#/keys`);
      await page.getByLabel('Search by name or prefix').fill(`team key ${tag}`);
      const cell = page.locator(`table.keys tr[data-key-id="${teamKeyId}"] [data-cell="team"] a`);
      await expectText(cell, teamName);
      await expect(cell.getAttribute('href')).resolves.toBe(`#/teams/${teamId}`);

      // The team's page lists it.
      await openTeam(teamId);
      const link = page.locator(`ul.team-keys li[data-key-id="${teamKeyId}"] a.key-name`);
      await expect(link.textContent()).resolves.toBe(`team key ${tag}`);
    });

    it('spend of /v1/generate shows in the budget bars and spend charts of the team, the key and the overview', async () => {
      for (let i = 0; i < 3; i += 1) {
        const res = await generate(teamKey, `spend ${i} ${tag}`);
        expect(res.status).toBe(200);
      }
      const team = await admin(`/admin/teams/${teamId}`).expect(200);
      const cost: number = team.body.usage.cost;
      if (!isRemote) expect(cost).toBeGreaterThan(0);
      expect(team.body.key_count).toBe(1);
      const teamRows = (await admin(`/admin/teams/${teamId}/usage`).expect(200)).body.data;

      await openTeam(teamId);
      await page.locator('[data-chart="cost"]').waitFor();
      expect(await meterValue('budget')).toBeCloseTo(cost, 12);
      await expect(page.locator('main [data-quota="budget"] .quota-figures').textContent()).resolves.toMatch(
        / of 0\.5 [A-Z]{3}$/,
      );
      await expect(page.locator('main [data-quota="requests"] .quota-figures').textContent()).resolves.toMatch(/^3 /);
      if (!isRemote) await page.locator('[data-chart="cost"] rect.bar').first().waitFor();
      expect(await barValue('cost', today(), model)).toBeCloseTo(rowCost(teamRows, today(), model), 12);
      expect(await barValue('requests', today(), model)).toBe(3);

      // The team list: its key count and budget bar.
      await page.getByRole('link', { name: '← Teams' }).click();
      const row = page.locator(`table.teams tr[data-team-id="${teamId}"]`);
      await expectText(row.locator('[data-cell="keys"]'), '1');
      expect(Number(await row.locator('meter').getAttribute('value'))).toBeCloseTo(cost, 12);

      // The key's own budget bar and spend chart.
      const key = await admin(`/admin/keys/${teamKeyId}`).expect(200);
      expect(key.body.usage.cost).toBeCloseTo(cost, 12);
      await openKey(teamKeyId);
      await page.locator('[data-chart="cost"]').waitFor();
      expect(await meterValue('budget')).toBeCloseTo(key.body.usage.cost, 12);
      expect(await barValue('cost', today(), model)).toBeCloseTo(rowCost(teamRows, today(), model), 12);

      // The overview: spend over all keys.
      const all = (await admin('/admin/usage').expect(200)).body.data;
      await page.goto(`${base}/admin/ui#/`);
      await page.locator('[data-chart="cost"]').waitFor();
      await expect(page.locator('[data-stat="cost"]').textContent()).resolves.toMatch(/ [A-Z]{3}$/);
      expect(await barValue('cost', today(), model)).toBeCloseTo(rowCost(all, today(), model), 12);
    });

    it('edits a team limit in the form, and the API enforces it on the team’s key', async () => {
      await openTeam(teamId);
      const form = page.locator('form.team-form');
      await form.getByLabel('Requests per minute').fill('2');
      await form.getByRole('button', { name: 'Save changes' }).click();
      await page.getByRole('status').filter({ hasText: 'Saved.' }).waitFor();
      expect((await admin(`/admin/teams/${teamId}`)).body.rpm_limit).toBe(2);
      // The key itself has the server's default RPM: the team's 2 per minute refuses, and says so.
      let limited: Awaited<ReturnType<typeof generate>> | null = null;
      for (let i = 0; i < 5 && !limited; i += 1) {
        const res = await generate(teamKey, `team rpm ${i}`);
        if (res.status === 429) limited = res;
        else expect(res.status).toBe(200);
      }
      expect(limited?.body.error).toMatchObject({ code: 'rate_limit_exceeded', param: 'team' });

      // Clearing the field removes the team's limit again.
      await page.reload();
      await page.locator('form.team-form').getByLabel('Requests per minute').fill('');
      await page.locator('form.team-form').getByRole('button', { name: 'Save changes' }).click();
      await page.getByRole('status').filter({ hasText: 'Saved.' }).waitFor();
      expect((await admin(`/admin/teams/${teamId}`)).body.rpm_limit).toBeNull();
    });

    it('refuses to delete the team while its key belongs, with the API’s 409; deletes it once the key left', async () => {
      await openTeam(teamId);
      await page.getByRole('button', { name: 'Delete team' }).click();
      await page.getByText('Delete this team?').waitFor();
      await page.getByRole('button', { name: 'Yes, delete' }).click();
      const alert = page.getByRole('alert');
      await alert.waitFor();
      await expect(alert.locator('.error-code').textContent()).resolves.toBe('team_not_empty');
      await expect(alert.locator('.error-message').textContent()).resolves.toMatch(/keys still belong to this team/);
      expect(new URL(page.url()).hash).toBe(`#/teams/${teamId}`);
      await admin(`/admin/teams/${teamId}`).expect(200);
      // Chromium logs the refused call itself.
      expect(problems).toEqual([expect.stringMatching(/status of 409/)]);
      problems.length = 0;

      // The key leaves the team on its page.
      await openKey(teamKeyId);
      await page.getByLabel('Team').selectOption({ label: 'no team' });
      await page.getByRole('button', { name: 'Save changes' }).click();
      await page.getByRole('status').filter({ hasText: 'Saved.' }).waitFor();
      expect((await admin(`/admin/keys/${teamKeyId}`)).body.team_id).toBeNull();
      await expect(page.locator('a.key-team').count()).resolves.toBe(0);

      await openTeam(teamId);
      await page.getByText('No keys in this team.').waitFor();
      await page.getByRole('button', { name: 'Delete team' }).click();
      await page.getByRole('button', { name: 'Yes, delete' }).click();
      await page.getByRole('heading', { name: 'Teams' }).waitFor();
      expect(new URL(page.url()).hash).toBe('#/teams');
      expect((await admin(`/admin/teams/${teamId}`)).body.error.code).toBe('team_not_found');
      await page.locator('table.teams, main p.muted').first().waitFor();
      await expect(page.locator(`tr[data-team-id="${teamId}"]`).count()).resolves.toBe(0);
    });
  });

  it('asked for nothing but its own origin, and tripped no CSP or Trusted Types check', () => {
    const origin = new URL(base).origin;
    expect(requests.length).toBeGreaterThan(10);
    for (const r of requests) expect(new URL(r.url).origin).toBe(origin);
    expect(problems).toEqual([]);
  });

  it('enforces Trusted Types: a string cannot reach innerHTML, and the attempt is reported', async () => {
    const outcome = await page.evaluate(
      `(() => { try { document.body.innerHTML = '<img src=x>'; return 'assigned'; } catch (e) { return e.name; } })()`,
    );
    expect(outcome).toBe('TypeError');
    await expect(page.locator('img').count()).resolves.toBe(0);
    // The same reporting that found nothing above sees this one.
    expect(problems.some((p) => p.includes('CSP violation: require-trusted-types-for'))).toBe(true);
    problems.length = 0;
  });

  it('saves screenshots of the main pages at 1280×800 and 390 wide', async () => {
    const seeded = isRemote ? null : await seedUsage();
    mkdirSync(SCREENSHOTS, { recursive: true });
    // Each page with what shows it has loaded.
    const pages: [string, string, string][] = [
      ['overview', '#/', '[data-chart="tokens"]'],
      ['keys', '#/keys', 'table.keys tbody tr'],
      ['key', `#/keys/${seeded?.keyId ?? keyId}`, '[data-chart="tokens"]'],
      // Against API_BASE nothing seeds a team (the team tests delete theirs): the empty list then.
      ['teams', '#/teams', seeded ? 'table.teams tbody tr' : 'table.teams tbody tr, main p.muted'],
      ...(seeded ? [['team', `#/teams/${seeded.teamId}`, '[data-chart="cost"]'] as [string, string, string]] : []),
      ['models', '#/models', 'article.model'],
    ];
    for (const [width, height, suffix] of [
      [1280, 800, 'desktop'],
      [390, 844, 'mobile'],
    ] as const) {
      await page.setViewportSize({ width, height });
      for (const [name, hash, loaded] of pages) {
        await page.goto(`${base}/admin/ui${hash}`);
        await page.locator(loaded).first().waitFor();
        await page.screenshot({ path: join(SCREENSHOTS, `${name}-${suffix}.png`), fullPage: suffix === 'mobile' });
      }
    }
    await page.setViewportSize({ width: 1280, height: 800 });
    expect(problems).toEqual([]);
  });

  it('signs out: sessionStorage is cleared and the sign-in page is back, also after a reload', async () => {
    await page.goto(`${base}/admin/ui#/keys`);
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByLabel('Admin token').waitFor();
    expect(await storage()).toEqual({ session: 0, local: 0, token: null, cookies: '' });
    await page.reload();
    await page.getByLabel('Admin token').waitFor();
    await expect(page.getByRole('link', { name: 'Keys', exact: true }).count()).resolves.toBe(0);
  });

  /**
   * In-process only: a few weeks of traffic on two models for one key of a team with a budget,
   * placed on past days with the fake clock, so the screenshots show charts with something in
   * them. Returns the key's and the team's ids.
   */
  async function seedUsage(): Promise<{ keyId: string; teamId: string }> {
    const now = app.clock.now();
    app.clock.set(new Date(now.getTime() - 26 * 86_400_000));
    const team = await app
      .http()
      .post('/admin/teams')
      .set(...adminAuth())
      .send({ name: 'reporting', rpm_limit: 1200, monthly_budget: 2 })
      .expect(201);
    const seeded = await createKey(app, {
      name: 'reporting service',
      rpm_limit: 600,
      monthly_quota: 5000,
      team_id: team.body.id,
    });
    for (let day = 26; day >= 0; day -= 1) {
      app.clock.set(new Date(now.getTime() - day * 86_400_000));
      const count = 1 + ((day * 7) % 5);
      for (let i = 0; i < count; i += 1) {
        // Requests come in identical pairs: the second of each is answered from the cache.
        const pair = Math.floor(i / 2);
        const res = await app
          .http()
          .post('/v1/generate')
          .set('X-API-Key', seeded.key)
          .send({
            model: pair === 1 ? 'mock-b' : 'mock-a',
            prompt: `report ${day} ${pair}`,
            max_new_tokens: 8 + pair * 8,
          });
        expect(res.status).toBe(200);
      }
    }
    app.clock.set(now);
    return { keyId: seeded.id, teamId: team.body.id };
  }
});
