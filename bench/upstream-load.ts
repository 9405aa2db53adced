/**
 * What the gateway benchmarks share (bench/gateway.ts, bench/scale.ts): the fake vLLM in a
 * process of its own, a gateway in front of it, a key, autocannon load (every request a miss,
 * or always the same one: hits), and a PostgreSQL database of its own for services mode.
 */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import autocannon from 'autocannon';
import { Client } from 'pg';
import { type Proc, ROOT, spawnNode, startGateway, stopper } from './gateway-process';

export async function startFake(tokenDelayMs = 0): Promise<Proc> {
  const child = spawnNode(
    ['-r', '@swc-node/register', join(ROOT, 'bench', 'fake-upstream.ts'), '--token-delay-ms', String(tokenDelayMs)],
    {},
    'pipe',
  );
  const url = await new Promise<string>((done) =>
    child.stdout!.once('data', (chunk: Buffer) => done(chunk.toString().trim())),
  );
  return { child, url, stop: stopper(child) };
}

/** The gateway with one model `m` on `upstream` (a vLLM); `modelYaml`: more of its fields, indented. */
export function startUpstreamGateway(
  upstream: string,
  env: Record<string, string>,
  adminToken: string,
  modelYaml = '',
): Promise<Proc> {
  return startGateway(
    `default_model: m\nmodels:\n  - name: m\n    provider: vllm\n    upstream_model: m\n    max_new_tokens: 64\n    base_url: ${upstream}\n` +
      modelYaml,
    { adminToken, env },
  );
}

export async function createKey(
  gateway: string,
  adminToken: string,
  fields: Record<string, unknown>,
): Promise<{ id: string; key: string }> {
  const res = await fetch(`${gateway}/admin/keys`, {
    method: 'POST',
    headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' },
    body: JSON.stringify({ name: 'bench', rpm_limit: 2_000_000_000, ...fields }),
  });
  if (res.status !== 201) throw new Error(`create key: ${res.status} ${await res.text()}`);
  return (await res.json()) as { id: string; key: string };
}

export interface LoadResult {
  rps: number;
  mean_ms: number;
  p50_ms: number;
  p99_ms: number;
  requests: number;
  non2xx: number;
  errors: number;
}

/**
 * autocannon against `url`: a new prompt per request (`unique`), else always the same one; for
 * `durationS` seconds, or `amount` requests.
 */
export async function load(
  target: { url: string; path: string; key?: string; keys?: string[] },
  connections: number,
  unique: boolean,
  { durationS, amount }: { durationS: number; amount?: number },
): Promise<LoadResult> {
  let n = 0;
  let turn = 0;
  // Several keys (a team's) take turns, one per request.
  const keyHeader = (): Record<string, string> =>
    target.keys ? { 'x-api-key': target.keys[turn++ % target.keys.length] } : {};
  const tag = randomBytes(4).toString('hex');
  const result = await autocannon({
    url: target.url,
    connections,
    ...(amount ? { amount } : { duration: durationS }),
    requests: [
      {
        method: 'POST',
        path: target.path,
        headers: { 'content-type': 'application/json', ...(target.key ? { 'x-api-key': target.key } : {}) },
        setupRequest: (req: autocannon.Request) => ({
          ...req,
          headers: { ...req.headers, ...keyHeader() },
          body: JSON.stringify(
            target.key
              ? { prompt: unique ? `question ${tag} ${n++}` : 'the same question', max_new_tokens: 16 }
              : { model: 'm', prompt: unique ? `question ${tag} ${n++}` : 'the same question', max_tokens: 16 },
          ),
        }),
      },
    ],
  });
  return {
    rps: Math.round(amount ? result.requests.total / result.duration : result.requests.average),
    mean_ms: result.latency.mean,
    p50_ms: result.latency.p50,
    p99_ms: result.latency.p99,
    requests: result.requests.total,
    non2xx: result.non2xx,
    errors: result.errors,
  };
}

/** A database of its own on DATABASE_URL's server and REDIS_URL under its own prefix; `cleanup` drops it. */
export async function servicesDatabase(): Promise<{ env: Record<string, string>; cleanup: () => Promise<void> }> {
  const database = `bench_${randomBytes(4).toString('hex')}`;
  const admin = new Client({ connectionString: process.env.DATABASE_URL });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${database}`);
  await admin.end();
  const url = new URL(process.env.DATABASE_URL!);
  url.pathname = `/${database}`;
  const env = { DATABASE_URL: url.toString(), REDIS_URL: process.env.REDIS_URL!, REDIS_PREFIX: `${database}:` };
  const cleanup = async () => {
    const client = new Client({ connectionString: process.env.DATABASE_URL });
    await client.connect();
    await client.query(`DROP DATABASE ${database} WITH (FORCE)`);
    await client.end();
  };
  return { env, cleanup };
}
