/**
 * A reservation never outlives its request (API.md "Teams, prices and budgets"): two real server
 * processes on one PostgreSQL database; one holds budget reservations for requests in flight and
 * is killed with SIGKILL; the other gives them back within 60 s, and the budget serves again.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from 'pg';
import { describeServices, SERVICES_DATABASE_URL, TEST_ADMIN_TOKEN } from '../harness/environment';
import { type ServerProcess, startServerProcess } from '../harness/process';

jest.setTimeout(120_000);

/** Each request reserves 8 tokens × 1 + its prompt bytes at 0: exactly 8 (prompt priced 0). */
const MODELS = `
default_model: priced
models:
  - name: priced
    provider: mock
    max_new_tokens: 8
    default_max_new_tokens: 8
    pricing: { input: 0, output: 1000000 }
`;

describeServices('budget reservations of a crashed replica', () => {
  let database: string;
  let databaseUrl: string;
  const admin = new Client({ connectionString: SERVICES_DATABASE_URL! });
  const servers: ServerProcess[] = [];

  beforeAll(async () => {
    await admin.connect();
    database = `budget_crash_${randomBytes(4).toString('hex')}`;
    await admin.query(`CREATE DATABASE ${database}`);
    const url = new URL(SERVICES_DATABASE_URL!);
    url.pathname = `/${database}`;
    databaseUrl = url.toString();
  });
  afterAll(async () => {
    for (const server of servers) if (server.proc.exitCode === null) server.proc.kill('SIGKILL');
    await admin.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
    await admin.end();
  });

  const start = async () => {
    const dir = mkdtempSync(join(tmpdir(), 'budget-crash-'));
    const modelsFile = join(dir, 'models.yaml');
    writeFileSync(modelsFile, MODELS);
    const server = await startServerProcess({
      NODE_ENV: 'test',
      DATABASE_URL: databaseUrl,
      DATA_DIR: join(dir, 'data'),
      MODELS_FILE: modelsFile,
      ADMIN_TOKEN: TEST_ADMIN_TOKEN,
      LOG_LEVEL: 'warn',
      BACKEND_PROBE_INTERVAL_MS: '0',
    });
    servers.push(server);
    return server;
  };
  const adminCall = async (base: string, method: string, path: string, body?: unknown) => {
    const res = await fetch(`${base}${path}`, {
      method,
      headers: { authorization: `Bearer ${TEST_ADMIN_TOKEN}`, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: res.status, body: (await res.json()) as Record<string, any> };
  };

  it('a replica killed with reservations in flight: another releases them within 60 s', async () => {
    const [doomed, survivor] = [await start(), await start()];
    const team = await adminCall(survivor.base, 'POST', '/admin/teams', { name: 'crash', monthly_budget: 40 });
    const key = await adminCall(survivor.base, 'POST', '/admin/keys', { name: 'k', team_id: team.body.id });
    // Four hanging requests on the doomed replica hold 4 × 8 = 32 of the 40.
    const hanging = Array.from({ length: 4 }, (_, i) =>
      fetch(`${doomed.base}/v1/generate`, {
        method: 'POST',
        headers: { 'x-api-key': key.body.key, 'content-type': 'application/json' },
        body: JSON.stringify({ prompt: `[mock:hang] held ${i}` }),
      }).catch(() => null),
    );
    const reserved = async () =>
      (await adminCall(survivor.base, 'GET', `/admin/teams/${team.body.id}`)).body.usage.reserved as number;
    for (let waited = 0; (await reserved()) < 32; waited += 100) {
      expect(waited).toBeLessThan(10_000);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    // The budget has 8 left: a second request that would need 8 more does not fit.
    const generate = (prompt: string) =>
      fetch(`${survivor.base}/v1/generate`, {
        method: 'POST',
        headers: { 'x-api-key': key.body.key, 'content-type': 'application/json', 'cache-control': 'no-store' },
        body: JSON.stringify({ prompt }),
      });
    expect((await generate('fits')).status).toBe(200);
    expect((await generate('does not fit')).status).toBe(402);

    doomed.proc.kill('SIGKILL');
    await doomed.exited;
    await Promise.all(hanging);
    const killedAt = Date.now();
    while ((await reserved()) > 0) {
      expect(Date.now() - killedAt).toBeLessThan(60_000);
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
    const releasedAfterMs = Date.now() - killedAt;
    expect(releasedAfterMs).toBeLessThan(60_000);
    // Nothing was spent by the dead requests: the budget serves again (32 left: four requests).
    const statuses = [];
    for (let i = 0; i < 5; i += 1) statuses.push((await generate(`after ${i}`)).status);
    expect(statuses).toEqual([200, 200, 200, 200, 402]);
    const view = await adminCall(survivor.base, 'GET', `/admin/teams/${team.body.id}`);
    expect(view.body.usage).toMatchObject({ cost: 40, reserved: 0 });
  });
});
