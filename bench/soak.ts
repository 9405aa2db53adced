/**
 * Soak: minutes of mixed traffic against the real server process on PostgreSQL and Redis, with
 * a schedule of faults, then the invariants of "nothing hangs, nothing is a 500, served usage is
 * never lost" checked against the database.
 *
 *   node -r @swc-node/register bench/soak.ts [--minutes 3] [--concurrency 12] [--name soak]
 *     (DATABASE_URL / REDIS_URL default to the local services; the result goes to
 *     bench/results/<name>.json)
 *
 * The server runs as a child process (`dist/main.js` when built, else the sources), with TCP
 * proxies between it and PostgreSQL, Redis and two fake vLLM upstreams. Traffic: plain
 * generations (misses), repeated prompts (cache hits), streams, streams the client cuts after
 * their first delta, chat completions, over keys with and without a quota. Fault schedule (as
 * fractions of the run): the server killed with SIGKILL under load and started again on the same
 * DATA_DIR (its usage journal replayed), Redis hung, PostgreSQL hung, PostgreSQL answering every
 * statement after DB_TIMEOUT_MS (the statement ran and committed, its reply arrives too late: the
 * ambiguous timeout), one upstream hung, Redis refusing, then SIGTERM while streams run.
 *
 * Invariants (the JSON result in bench/results/soak.json says which held):
 * - no 5xx other than the contract's 502/503/504 from faults, and never a 500;
 * - no request answered later than its bound (timeout_ms + DB_TIMEOUT_MS + 1 s);
 * - every key's quota counter equals the billed requests of that key (200s, and cuts after output);
 * - the usage ledger's requests equal the billed requests of every key (nothing lost, nothing
 *   counted twice);
 *   both exactly, except for the requests in flight at the SIGKILL: the client never learnt their
 *   outcome, so each may or may not be counted (at most one unit and one ledger request each);
 * - heap and RSS after the run within 10 % of their warm level;
 * - the process exits 0 on SIGTERM.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Client } from 'pg';
import { FakeVllm } from '../test/fakes/fake-vllm';
import { parseExposition, sampleValue } from '../test/harness/prometheus';
import { freePort } from '../test/harness/redis-server';
import { TcpProxy } from '../test/harness/tcp-proxy';
import { arg, percentiles, writeResult } from './lib';

const ROOT = resolve(__dirname, '..');
const MINUTES = Number(arg('minutes', '3'));
const NAME = arg('name', 'soak');
const CONCURRENCY = Number(arg('concurrency', '12'));
const DATABASE_URL = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const ADMIN_TOKEN = randomBytes(24).toString('hex');
const TIMEOUT_MS = 2000;
const DB_TIMEOUT_MS = 3000;
const BOUND_MS = TIMEOUT_MS + DB_TIMEOUT_MS + 1000;

type Kind = 'miss' | 'hit' | 'stream' | 'cut' | 'chat';

interface Outcome {
  kind: Kind;
  key: string;
  status: number;
  ms: number;
  /** performance.now() when it was sent and when it ended. */
  startedAt: number;
  endedAt: number;
  /** The request used a unit: answered, or a stream that delivered output before it ended. */
  billed: boolean;
}

interface Key {
  id: string;
  key: string;
  quota: boolean;
}

function startServer(env: Record<string, string>): ChildProcess {
  const built = existsSync(join(ROOT, 'dist', 'main.js'));
  const entry = built ? [join(ROOT, 'dist', 'main.js')] : ['-r', '@swc-node/register', join(ROOT, 'src', 'main.ts')];
  const args = ['--expose-gc', '-r', join(ROOT, 'bench', 'soak-gc.js'), ...entry];
  const child = spawn(process.execPath, args, { cwd: ROOT, env: { PATH: process.env.PATH ?? '', ...env } });
  child.stdout!.resume();
  child.stderr!.on('data', (chunk: Buffer) => process.stderr.write(chunk));
  return child;
}

async function untilReady(base: string): Promise<void> {
  for (let i = 0; i < 600; i += 1) {
    try {
      if ((await fetch(`${base}/readyz`)).status === 200) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('the server did not become ready');
}

/** One request; streams are read to the end, or cut after their first delta (`cut`). */
function send(base: string, key: Key, kind: Kind, n: number): Promise<Outcome> {
  const started = performance.now();
  const stream = kind === 'stream' || kind === 'cut';
  const path = kind === 'chat' ? '/v1/chat/completions' : '/v1/generate';
  const prompt = kind === 'hit' ? `the same question ${n % 5}` : `question ${n} ${randomBytes(4).toString('hex')}`;
  const body =
    kind === 'chat'
      ? { messages: [{ role: 'user', content: prompt }], max_tokens: 16 }
      : { prompt, max_new_tokens: 16, stream };
  return new Promise((done) => {
    const finish = (status: number, billed: boolean) => {
      const endedAt = performance.now();
      done({ kind, key: key.id, status, ms: endedAt - started, startedAt: started, endedAt, billed });
    };
    const req = httpRequest(`${base}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-api-key': key.key },
    });
    req.on('error', () => finish(0, false));
    req.on('response', (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        text += chunk;
        if (kind === 'cut' && /"delta"/.test(text)) {
          req.destroy();
          finish(res.statusCode ?? 0, true);
        }
      });
      res.on('end', () => {
        const status = res.statusCode ?? 0;
        // A stream that delivered output and then an error event is billed too (a cut after output).
        const billed = status === 200 && (!text.includes('"error"') || /"delta"/.test(text));
        finish(status, billed);
      });
      res.on('error', () => finish(res.statusCode ?? 0, false));
    });
    req.end(JSON.stringify(body));
  });
}

/** Memory after a full garbage collection in the server (see soak-gc.js). */
async function collectedMemory(server: ChildProcess, base: string): Promise<{ heap: number; rss: number }> {
  server.kill('SIGUSR2');
  await new Promise((r) => setTimeout(r, 500));
  return scrape(base);
}

async function scrape(base: string): Promise<{ heap: number; rss: number }> {
  const text = await (await fetch(`${base}/metrics`)).text();
  const samples = parseExposition(text);
  return {
    heap: sampleValue(samples, 'nodejs_heap_size_used_bytes', {}) ?? 0,
    rss: sampleValue(samples, 'process_resident_memory_bytes', {}) ?? 0,
  };
}

async function main(): Promise<void> {
  const database = `soak_${randomBytes(4).toString('hex')}`;
  const admin = new Client({ connectionString: DATABASE_URL });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${database}`);
  const dbUrl = new URL(DATABASE_URL);
  dbUrl.pathname = `/${database}`;
  const [pgProxy, redisProxy, upstreamA, upstreamB] = await Promise.all([
    TcpProxy.start(dbUrl.toString()),
    TcpProxy.start(REDIS_URL),
    FakeVllm.start(),
    FakeVllm.start(),
  ]);
  upstreamA.setMode('slow', { delayMs: 5 });
  upstreamB.setMode('slow', { delayMs: 5 });
  const dir = mkdtempSync(join(tmpdir(), 'soak-'));
  const modelsFile = join(dir, 'models.yaml');
  writeFileSync(
    modelsFile,
    `default_model: m
models:
  - name: m
    provider: vllm
    upstream_model: m
    timeout_ms: ${TIMEOUT_MS}
    max_new_tokens: 64
    breaker: { failures: 3, cooldown_ms: 3000 }
    upstreams:
      - base_url: ${upstreamA.url}
      - base_url: ${upstreamB.url}
`,
  );
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const serverEnv = {
    PORT: String(port),
    HOST: '127.0.0.1',
    ADMIN_TOKEN,
    DATABASE_URL: pgProxy.urlFor(dbUrl.toString()),
    REDIS_URL: redisProxy.urlFor(REDIS_URL),
    REDIS_PREFIX: `${database}:`,
    MODELS_FILE: modelsFile,
    DATA_DIR: dir,
    LOG_LEVEL: 'error',
    DB_TIMEOUT_MS: String(DB_TIMEOUT_MS),
    SHUTDOWN_GRACE_MS: '5000',
    BACKEND_PROBE_INTERVAL_MS: '0',
  };
  let server = startServer(serverEnv);
  let exited = new Promise<number | null>((done) => server.on('exit', (code) => done(code)));
  await untilReady(base);
  /** The SIGKILL: when it happened, when the new process was ready (performance.now()). */
  const crash = { killedAt: Infinity, readyAt: Infinity };
  const killAndRestart = async () => {
    crash.killedAt = performance.now();
    server.kill('SIGKILL');
    await exited;
    server = startServer(serverEnv);
    exited = new Promise<number | null>((done) => server.on('exit', (code) => done(code)));
    await untilReady(base);
    crash.readyAt = performance.now();
  };

  const keys: Key[] = [];
  for (let i = 0; i < 6; i += 1) {
    const quota = i < 4;
    const res = await fetch(`${base}/admin/keys`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        name: `soak ${i}`,
        rpm_limit: 1_000_000,
        ...(quota ? { monthly_quota: 10_000_000 } : {}),
      }),
    });
    const created = (await res.json()) as { id: string; key: string };
    keys.push({ id: created.id, key: created.key, quota });
  }

  const durationMs = MINUTES * 60_000;
  const started = Date.now();
  const at = (fraction: number) => started + fraction * durationMs;
  const schedule: { at: number; name: string; run: () => Promise<void> | void }[] = [
    { at: at(0.08), name: 'server killed (SIGKILL) and started again', run: killAndRestart },
    { at: at(0.2), name: 'redis hangs', run: () => redisProxy.setMode('hang') },
    { at: at(0.3), name: 'redis back', run: () => redisProxy.setMode('pass') },
    { at: at(0.4), name: 'postgres hangs', run: () => pgProxy.setMode('hang') },
    { at: at(0.5), name: 'postgres back', run: () => pgProxy.setMode('pass') },
    {
      at: at(0.53),
      name: 'postgres replies after DB_TIMEOUT_MS (statements commit, replies lost)',
      run: () => pgProxy.setMode('late-replies', DB_TIMEOUT_MS + 500),
    },
    { at: at(0.58), name: 'postgres back', run: () => pgProxy.setMode('pass') },
    { at: at(0.6), name: 'upstream A hangs', run: () => upstreamA.setMode('hang') },
    { at: at(0.7), name: 'upstream A back', run: () => upstreamA.setMode('slow', { delayMs: 5 }) },
    { at: at(0.8), name: 'redis refuses', run: () => redisProxy.setMode('refuse') },
    { at: at(0.85), name: 'redis back', run: () => redisProxy.setMode('pass') },
  ];
  const faults: { name: string; at_s: number }[] = [];
  const faultTimer = setInterval(() => {
    while (schedule.length > 0 && Date.now() >= schedule[0].at) {
      const fault = schedule.shift()!;
      faults.push({ name: fault.name, at_s: Math.round((Date.now() - started) / 1000) });
      void fault.run();
    }
  }, 100);

  const outcomes: Outcome[] = [];
  // The warm level: after the restart and 16 % of the run (pools, JIT and caches warmed), before
  // the other faults.
  const levels: { warm?: { heap: number; rss: number } } = {};
  const warmTimer = setTimeout(() => {
    void collectedMemory(server, base).then((m) => (levels.warm = m));
  }, 0.16 * durationMs);
  const kinds: Kind[] = ['miss', 'miss', 'hit', 'stream', 'cut', 'chat'];
  let n = 0;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (Date.now() < started + durationMs) {
        const i = n++;
        const outcome = await send(base, keys[i % keys.length], kinds[i % kinds.length], i);
        outcomes.push(outcome);
        if (outcome.status === 0) await new Promise((r) => setTimeout(r, 50)); // the server is restarting
      }
    }),
  );
  clearInterval(faultTimer);

  // Quiet, then the end level, both after a full collection.
  clearTimeout(warmTimer);
  await new Promise((r) => setTimeout(r, 5000));
  const end = await collectedMemory(server, base);
  const warmHeap = levels.warm?.heap ?? 0;
  const warmRss = levels.warm?.rss ?? 0;

  // SIGTERM while streams run: they drain or are cut and billed.
  const draining = Array.from({ length: 4 }, (_, i) => send(base, keys[i], 'stream', n + i));
  await new Promise((r) => setTimeout(r, 50));
  server.kill('SIGTERM');
  outcomes.push(...(await Promise.all(draining)));
  const exitCode = await exited;

  const db = new Client({ connectionString: dbUrl.toString() });
  await db.connect();
  const counters = new Map(
    (await db.query('SELECT id, quota_requests_used FROM api_keys')).rows.map((r) => [
      r.id,
      Number(r.quota_requests_used),
    ]),
  );
  const ledger = new Map(
    (await db.query('SELECT key_id, sum(requests) AS requests FROM key_usage_daily GROUP BY key_id')).rows.map((r) => [
      r.key_id,
      Number(r.requests),
    ]),
  );
  await db.end();

  // Requests the SIGKILL cut (in flight at it) and those refused while no process listened.
  const killed = (o: Outcome) => o.startedAt < crash.killedAt && o.endedAt >= crash.killedAt && !o.billed;
  const whileDown = (o: Outcome) => o.startedAt >= crash.killedAt && o.startedAt < crash.readyAt;
  const billed = (key: Key) => outcomes.filter((o) => o.key === key.id && o.billed).length;
  const cut = (key: Key) => outcomes.filter((o) => o.key === key.id && killed(o)).length;
  const perKey = keys.map((key) => ({
    key: key.id,
    quota: key.quota,
    billed_requests: billed(key),
    cut_by_the_kill: cut(key),
    quota_counter: key.quota ? counters.get(key.id) : null,
    ledger_requests: ledger.get(key.id) ?? 0,
  }));
  /** Exact, but for the requests the kill cut: each may have been counted once, never more. */
  const agrees = (counted: number, k: (typeof perKey)[number]) =>
    counted >= k.billed_requests && counted <= k.billed_requests + k.cut_by_the_kill;
  const statuses: Record<string, number> = {};
  for (const o of outcomes) statuses[o.status] = (statuses[o.status] ?? 0) + 1;
  const overBound = outcomes.filter((o) => o.ms > BOUND_MS);
  const invariants = {
    no_500: !outcomes.some((o) => o.status === 500 || (o.status === 0 && !killed(o) && !whileDown(o))),
    no_request_over_bound: overBound.length === 0,
    quota_counters_equal_billed: perKey.every((k) => !k.quota || agrees(k.quota_counter!, k)),
    ledger_equals_billed: perKey.every((k) => agrees(k.ledger_requests, k)),
    heap_within_10_percent: end.heap <= warmHeap * 1.1,
    rss_within_10_percent: end.rss <= warmRss * 1.1,
    sigterm_exit_0: exitCode === 0,
  };
  writeResult(NAME, {
    minutes: MINUTES,
    concurrency: CONCURRENCY,
    requests: outcomes.length,
    statuses,
    latency: percentiles(outcomes.map((o) => o.ms)),
    bound_ms: BOUND_MS,
    over_bound: overBound.slice(0, 10),
    faults,
    killed_in_flight: outcomes.filter(killed).length,
    refused_while_restarting: outcomes.filter(whileDown).length,
    restart_ms: Math.round(crash.readyAt - crash.killedAt),
    memory: { warm_heap: warmHeap, end_heap: end.heap, warm_rss: warmRss, end_rss: end.rss },
    per_key: perKey,
    invariants,
    all_held: Object.values(invariants).every(Boolean),
  });

  await Promise.all([pgProxy.close(), redisProxy.close(), upstreamA.close(), upstreamB.close()]);
  await admin.query(`DROP DATABASE ${database} WITH (FORCE)`);
  await admin.end();
  process.exit(Object.values(invariants).every(Boolean) ? 0 : 1);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
