/**
 * Usage that was served survives the process (API.md "Quotas"): the real server as a child
 * process, on PostgreSQL behind a TCP proxy the test breaks.
 * - killed with SIGKILL while PostgreSQL is unreachable, then started again on the same DATA_DIR:
 *   every 200 it served is in the ledger once (the journal is taken over and written);
 * - SIGTERM right after a short PostgreSQL blip (the database still counted as down): the final
 *   flush goes around the down-gate and writes everything before the process exits.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from 'pg';
import { FIXTURE_MODELS, withDatabase } from '../harness/app';
import {
  describeServices,
  SERVICES_DATABASE_URL,
  SERVICES_MIGRATION_URL,
  TEST_ADMIN_TOKEN,
} from '../harness/environment';
import { type ServerProcess, startServerProcess } from '../harness/process';
import { TcpProxy } from '../harness/tcp-proxy';
import { sleep } from '../fakes/fake-server';

jest.setTimeout(120_000);

describeServices('usage survives the process', () => {
  let database: string;
  let databaseUrl: string;
  let proxy: TcpProxy;
  const admin = new Client({ connectionString: SERVICES_DATABASE_URL! });
  const servers: ServerProcess[] = [];

  beforeAll(async () => {
    await admin.connect();
    database = `crash_${randomBytes(4).toString('hex')}`;
    await admin.query(`CREATE DATABASE ${database}`);
    const url = new URL(SERVICES_DATABASE_URL!);
    url.pathname = `/${database}`;
    databaseUrl = url.toString();
    proxy = await TcpProxy.start(databaseUrl);
  });
  afterAll(async () => {
    for (const server of servers) if (server.proc.exitCode === null) server.proc.kill('SIGKILL');
    await proxy?.close();
    await admin.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
    await admin.end();
  });

  const start = async (dataDir: string, env: Record<string, string> = {}) => {
    const server = await startServerProcess({
      NODE_ENV: 'test',
      DATABASE_URL: proxy.urlFor(databaseUrl),
      // Through PgBouncer (test:scale), migrations go straight to PostgreSQL.
      ...(SERVICES_MIGRATION_URL ? { DATABASE_MIGRATION_URL: withDatabase(SERVICES_MIGRATION_URL, database) } : {}),
      DATA_DIR: dataDir,
      MODELS_FILE: FIXTURE_MODELS,
      ADMIN_TOKEN: TEST_ADMIN_TOKEN,
      LOG_LEVEL: 'warn',
      BACKEND_PROBE_INTERVAL_MS: '0',
      DB_TIMEOUT_MS: '1000',
      ...env,
    });
    servers.push(server);
    return server;
  };
  const createKey = async (base: string) => {
    const res = await fetch(`${base}/admin/keys`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TEST_ADMIN_TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'crash', rpm_limit: 10_000 }),
    });
    expect(res.status).toBe(201);
    return (await res.json()) as { id: string; key: string };
  };
  const generate = (base: string, key: string, i: number) =>
    fetch(`${base}/v1/generate`, {
      method: 'POST',
      headers: { 'x-api-key': key, 'content-type': 'application/json', 'cache-control': 'no-store' },
      body: JSON.stringify({ prompt: `request ${i}` }),
    });
  /** The ledger's requests of `keyId`, read straight from PostgreSQL. */
  const ledger = async (keyId: string): Promise<number> => {
    const db = new Client({ connectionString: databaseUrl });
    await db.connect();
    try {
      const { rows } = await db.query(
        'SELECT coalesce(sum(requests), 0)::int AS n FROM key_usage_daily WHERE key_id = $1',
        [keyId],
      );
      return rows[0].n as number;
    } finally {
      await db.end();
    }
  };

  it('kill -9 while PostgreSQL is unreachable, then a restart: the ledger holds every 200, once', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'llm-crash-'));
    const first = await start(dataDir);
    const { id, key } = await createKey(first.base);
    expect((await generate(first.base, key, 0)).status).toBe(200); // the key is now cached
    await proxy.setMode('refuse');
    let served = 1;
    for (let i = 1; i <= 20; i += 1) if ((await generate(first.base, key, i)).status === 200) served += 1;
    expect(served).toBe(21);
    first.proc.kill('SIGKILL');
    expect((await first.exited).signal).toBe('SIGKILL');
    await proxy.setMode('pass');
    const second = await start(dataDir);
    const deadline = Date.now() + 20_000;
    while ((await ledger(id)) < served && Date.now() < deadline) await sleep(200);
    await sleep(1500); // nothing more arrives
    expect(await ledger(id)).toBe(served);
    second.proc.kill('SIGTERM');
    expect((await second.exited).code).toBe(0);
  });

  it('SIGTERM right after a PostgreSQL blip: the final flush writes everything before the process exits', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'llm-blip-'));
    const server = await start(dataDir, { SHUTDOWN_GRACE_MS: '5000' });
    const { id, key } = await createKey(server.base);
    let served = 0;
    for (let i = 0; i < 5; i += 1) if ((await generate(server.base, key, i)).status === 200) served += 1;
    await proxy.setMode('refuse');
    for (let i = 5; i < 10; i += 1) if ((await generate(server.base, key, i)).status === 200) served += 1;
    // An admin call finds the database down; the blip is over before the next probe.
    const during = await fetch(`${server.base}/admin/keys`, {
      headers: { authorization: `Bearer ${TEST_ADMIN_TOKEN}` },
    });
    expect(during.status).toBe(503);
    await proxy.setMode('pass');
    server.proc.kill('SIGTERM');
    expect((await server.exited).code).toBe(0);
    expect(served).toBe(10);
    expect(await ledger(id)).toBe(served);
    expect(server.output()).not.toMatch(/could not write everything/);
  });
});
