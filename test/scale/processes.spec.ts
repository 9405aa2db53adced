/**
 * The server as teams scale it out, as real processes (issue 28), on the Redis Cluster and the
 * PgBouncer `npm run test:scale` starts: two replicas starting at once on a fresh database,
 * migrating through DATABASE_MIGRATION_URL; WORKERS=2 (one port; limits exact; /metrics sums
 * both workers; a worker killed is restarted and logged; SIGTERM drains both with streams in
 * flight); WORKERS above 1 without PostgreSQL and Redis refused at startup.
 */
import { execFileSync } from 'node:child_process';
import { request as httpRequest } from 'node:http';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { Client } from 'pg';
import { FIXTURE_MODELS, withDatabase } from '../harness/app';
import { SERVICES_DATABASE_URL, SERVICES_MIGRATION_URL, TEST_ADMIN_TOKEN } from '../harness/environment';
import { runServerUntilExit, type ServerProcess, startServerProcess } from '../harness/process';
import { waitFor } from '../harness/scale-services';
import { readMigrationFiles } from '../../src/infra/database/sql-migrations';

const CLUSTER_NODES = process.env.REDIS_CLUSTER_NODES ?? '';
const pooled = Boolean(SERVICES_DATABASE_URL && SERVICES_MIGRATION_URL && CLUSTER_NODES);
const describeScale = pooled ? describe : describe.skip;

interface Answer {
  status: number;
  body: string;
}

/** One request on a connection of its own (so WORKERS share them out), never rejecting. */
function send(
  base: string,
  method: string,
  path: string,
  headers: Record<string, string>,
  body?: unknown,
): Promise<Answer> {
  return new Promise((resolve) => {
    const req = httpRequest(`${base}${path}`, {
      method,
      agent: false,
      headers: { 'content-type': 'application/json', ...headers },
    });
    req.on('response', (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
      res.on('error', () => resolve({ status: res.statusCode ?? 0, body: text }));
    });
    req.on('error', (error) => resolve({ status: 0, body: error.message }));
    req.end(body === undefined ? undefined : JSON.stringify(body));
  });
}

/** `count` uncached generations at once, each on a connection of its own. */
function generations(base: string, key: string, count: number): Promise<Answer[]> {
  return Promise.all(
    Array.from({ length: count }, (_, i) =>
      send(base, 'POST', '/v1/generate', { 'x-api-key': key, 'cache-control': 'no-store' }, { prompt: `p${i}` }),
    ),
  );
}

async function createKey(base: string, fields: Record<string, unknown> = {}): Promise<{ key: string; id: string }> {
  const res = await send(
    base,
    'POST',
    '/admin/keys',
    { authorization: `Bearer ${TEST_ADMIN_TOKEN}` },
    {
      name: 'scale',
      ...fields,
    },
  );
  if (res.status !== 201) throw new Error(`createKey: ${res.status} ${res.body}`);
  return JSON.parse(res.body) as { key: string; id: string };
}

/** The sum of a metric's samples whose labels contain every one of `labels`. */
function metricSum(text: string, name: string, labels: Record<string, string> = {}): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    if (!Object.entries(labels).every(([key, value]) => line.includes(`${key}="${value}"`))) continue;
    sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}

/** A fresh database (dropped after) and the environment of a server on it through PgBouncer. */
async function freshDatabase(): Promise<{ env: Record<string, string>; name: string; drop(): Promise<void> }> {
  const name = `scale_${randomBytes(5).toString('hex')}`;
  const admin = new Client({ connectionString: SERVICES_MIGRATION_URL! });
  await admin.connect();
  await admin.query(`CREATE DATABASE "${name}"`);
  await admin.end();
  return {
    name,
    env: {
      NODE_ENV: 'test',
      DATABASE_URL: withDatabase(SERVICES_DATABASE_URL!, name),
      DATABASE_MIGRATION_URL: withDatabase(SERVICES_MIGRATION_URL!, name),
      REDIS_CLUSTER_NODES: CLUSTER_NODES,
      REDIS_PREFIX: `${name}:`,
      MODELS_FILE: FIXTURE_MODELS,
      ADMIN_TOKEN: TEST_ADMIN_TOKEN,
      BACKEND_PROBE_INTERVAL_MS: '0',
      LOG_LEVEL: 'info',
      // Beside the whole suite on 2 cores: a 250 ms bound would mark Redis down under load alone.
      REDIS_TIMEOUT_MS: '1000',
    },
    drop: async () => {
      const client = new Client({ connectionString: SERVICES_MIGRATION_URL! });
      await client.connect();
      await client.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
      await client.end();
    },
  };
}

describeScale('two replicas starting at once, through PgBouncer', () => {
  const servers: ServerProcess[] = [];
  afterAll(() => {
    for (const server of servers) if (server.proc.exitCode === null) server.proc.kill('SIGKILL');
  });

  it('migrate through DATABASE_MIGRATION_URL exactly once between them, then both serve', async () => {
    const db = await freshDatabase();
    try {
      const started = await Promise.all(
        [1, 2].map(() => startServerProcess({ ...db.env, DATA_DIR: mkdtempSync(join(tmpdir(), 'llm-scale-')) })),
      );
      servers.push(...started);
      const client = new Client({ connectionString: withDatabase(SERVICES_MIGRATION_URL!, db.name) });
      await client.connect();
      const { rows } = await client.query<{ name: string }>('SELECT name FROM schema_migrations');
      await client.end();
      expect(rows.map((row) => row.name).sort()).toEqual(
        readMigrationFiles()
          .map((file) => file.className)
          .sort(),
      );
      // A key made on one is served by the other (one database, one Redis).
      const { key } = await createKey(started[0].base);
      const answer = await send(started[1].base, 'POST', '/v1/generate', { 'x-api-key': key }, { prompt: 'hi' });
      expect(answer.status).toBe(200);
    } finally {
      for (const server of servers.splice(0)) server.proc.kill('SIGKILL');
      await db.drop();
    }
  });
});

describeScale('WORKERS=2', () => {
  let server: ServerProcess;
  let db: Awaited<ReturnType<typeof freshDatabase>>;

  beforeAll(async () => {
    db = await freshDatabase();
    server = await startServerProcess({
      ...db.env,
      WORKERS: '2',
      DATA_DIR: mkdtempSync(join(tmpdir(), 'llm-workers-')),
      SHUTDOWN_GRACE_MS: '20000',
    });
    await waitFor('both workers listen', async () => (server.output().match(/llm-server ready at/g) ?? []).length >= 2);
  });
  afterAll(async () => {
    if (server?.proc.exitCode === null) server.proc.kill('SIGKILL');
    await db?.drop();
  });

  const workerPids = () =>
    execFileSync('pgrep', ['-P', String(server.proc.pid)], { encoding: 'utf8' })
      .split('\n')
      .filter(Boolean)
      .map(Number);

  it('serve one port; an RPM limit is exact across both', async () => {
    expect(workerPids()).toHaveLength(2);
    const { key } = await createKey(server.base, { rpm_limit: 10 });
    const answers = await generations(server.base, key, 30);
    const counts: Record<number, number> = {};
    for (const { status } of answers) counts[status] = (counts[status] ?? 0) + 1;
    expect(counts).toEqual({ 200: 10, 429: 20 });
  });

  it('/metrics reports both workers together, whichever answers the scrape', async () => {
    const { key } = await createKey(server.base);
    const before = await send(server.base, 'GET', '/metrics', {});
    const base = metricSum(before.body, 'llm_requests_total', { outcome: 'success' });
    await generations(server.base, key, 12);
    // Scrapes on new connections land on both workers: each reports all 12.
    const scrapes = await Promise.all(Array.from({ length: 4 }, () => send(server.base, 'GET', '/metrics', {})));
    for (const scrape of scrapes) {
      expect(scrape.status).toBe(200);
      expect(metricSum(scrape.body, 'llm_requests_total', { outcome: 'success' }) - base).toBe(12);
    }
    // Histograms merged: one count per request of those 12 and before.
    expect(metricSum(scrapes[0].body, 'llm_request_duration_seconds_count')).toBe(base + 12);
  });

  it('a worker that dies is logged and replaced; the other serves meanwhile', async () => {
    const [victim] = workerPids();
    process.kill(victim, 'SIGKILL');
    await waitFor('the death is logged', async () => server.output().includes('a worker died: starting another'));
    const { key } = await createKey(server.base);
    expect((await send(server.base, 'POST', '/v1/generate', { 'x-api-key': key }, { prompt: 'still' })).status).toBe(
      200,
    );
    await waitFor(
      'a new worker listens',
      async () => (server.output().match(/llm-server ready at/g) ?? []).length >= 3,
    );
    expect(workerPids()).toHaveLength(2);
    expect(workerPids()).not.toContain(victim);
  });

  it('SIGTERM drains both workers: streams in flight on each finish, then the process exits 0', async () => {
    const { key } = await createKey(server.base);
    let started = 0;
    const streams = Array.from(
      { length: 6 },
      () =>
        new Promise<Answer>((resolve) => {
          const req = httpRequest(`${server.base}/v1/generate`, {
            method: 'POST',
            agent: false,
            headers: { 'content-type': 'application/json', 'x-api-key': key, 'cache-control': 'no-store' },
          });
          req.on('response', (res) => {
            let body = '';
            res.setEncoding('utf8');
            res.on('data', (chunk: string) => {
              if (body === '') started += 1;
              body += chunk;
            });
            res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
            res.on('error', () => resolve({ status: res.statusCode ?? 0, body }));
          });
          req.on('error', (error) => resolve({ status: 0, body: error.message }));
          req.end(JSON.stringify({ prompt: '[mock:slow:200][mock:echo] one two three four five six', stream: true }));
        }),
    );
    await waitFor('every stream has started', async () => started === 6);
    server.proc.kill('SIGTERM');
    const answers = await Promise.all(streams);
    for (const answer of answers) {
      expect(answer.status).toBe(200);
      expect(answer.body).toContain('six');
      expect(answer.body).toContain('[DONE]');
    }
    expect(await server.exited).toEqual({ code: 0, signal: null });
    expect(server.output()).toContain('every worker has stopped');
  });
});

describe('WORKERS above 1 without PostgreSQL and Redis', () => {
  it('is a startup error that says what is missing', async () => {
    const { code, stderr } = await runServerUntilExit({ WORKERS: '2', MODELS_FILE: FIXTURE_MODELS });
    expect(code).toBe(1);
    expect(stderr).toMatch(
      /configuration error: WORKERS: 2 processes share limits, cache and keys only through PostgreSQL and Redis/,
    );
  });
});
