/**
 * The gateway's overhead, as users meet it: the same requests sent to a fake vLLM directly and
 * through the gateway (`npm run bench`). Every party runs in a process of its own on this
 * machine: the fake upstream, the gateway (`dist/main.js`, production settings: LOG_LEVEL info),
 * and this process, the load generator (autocannon).
 *
 * Cases, embedded (PGlite, in-process stores) and, when DATABASE_URL and REDIS_URL are set (or
 * --services), on PostgreSQL + Redis:
 * - direct / miss at 1 connection: the added latency (mean and p99 through the gateway minus
 *   direct), every request a cache miss (a new prompt each time), 16-token answers;
 * - direct / miss / hit at 32 connections: requests per second;
 * - hot key: one key with a monthly quota of HOT_QUOTA requests sent HOT_QUOTA + HOT_OVER requests
 *   at 32 connections (a fixed count, so none is cut off by the end of a timed run): exactly
 *   HOT_QUOTA must be answered 2xx, the rest 402, and its quota counter must read HOT_QUOTA;
 * - hot team: one team with a monthly budget of HOT_QUOTA / 4 answers at their largest cost (the
 *   model is priced per output token; an answer reserves 16 tokens and uses 1 to 16), its four
 *   keys taking turns, HOT_QUOTA + HOT_OVER requests at 32 connections, enough to spend it: the
 *   spend must never pass the budget and must end within one answer's largest cost of it (a
 *   request was refused only when it could not fit), with no request left holding a reservation;
 * - 1,000 concurrent SSE streams, the fake producing 20 tokens/s, in each mode: all must
 *   complete; time to first token through the gateway minus direct; the gateway's peak RSS;
 * - the embedded footprint: `npm start`'s default (tiny loaded, PGlite in a new DATA_DIR, then
 *   again on the same one): time to /healthz and /readyz, RSS once ready.
 *
 *   node -r @swc-node/register bench/gateway.ts [--duration 8] [--services]
 *     [--only embedded|services|streams|footprint]
 *
 * Writes bench/results/gateway.json and bench/results/gateway.svg (latency and throughput by case).
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { arg, percentiles, reachable, writeResult } from './lib';
import { ROOT, startGateway } from './gateway-process';
import {
  createKey as createKeyFor,
  load as loadFor,
  servicesDatabase,
  startFake,
  startUpstreamGateway as startUpstreamGatewayFor,
} from './upstream-load';
import { renderChart } from './chart';

const DURATION_S = Number(arg('duration', '8'));
const ADMIN_TOKEN = randomBytes(24).toString('hex');
const STREAMS = Number(arg('streams', '1000'));
const HOT_QUOTA = Number(arg('hot-quota', '6000'));
const HOT_OVER = 500;
/** Output price of the bench model: an answer's 16 tokens cost 16 µ-units. */
const PRICE_PER_MILLION = 1;
const ANSWER_COST = (16 * PRICE_PER_MILLION) / 1e6;

const startUpstreamGateway = (upstream: string, env: Record<string, string>) =>
  startUpstreamGatewayFor(upstream, env, ADMIN_TOKEN, `    pricing: { input: 0, output: ${PRICE_PER_MILLION} }\n`);
const createKey = (gateway: string, fields: Record<string, unknown>) => createKeyFor(gateway, ADMIN_TOKEN, fields);
const load = (
  target: { url: string; path: string; key?: string; keys?: string[] },
  connections: number,
  unique: boolean,
  amount?: number,
) => loadFor(target, connections, unique, { durationS: DURATION_S, amount });

/** `count` concurrent SSE streams; time to the first delta of each, and whether each completed. */
async function streams(
  target: { url: string; path: string; key?: string },
  count: number,
): Promise<{ ttft: ReturnType<typeof percentiles>; completed: number }> {
  const tag = randomBytes(4).toString('hex');
  const one = (i: number) =>
    new Promise<{ ttft: number; completed: boolean }>((done) => {
      const started = performance.now();
      let ttft = -1;
      let text = '';
      const body = target.key
        ? { prompt: `stream ${tag} ${i}`, max_new_tokens: 16, stream: true }
        : { model: 'm', prompt: `stream ${tag} ${i}`, max_tokens: 16, stream: true };
      const req = httpRequest(`${target.url}${target.path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...(target.key ? { 'x-api-key': target.key } : {}) },
        agent: false,
      });
      req.on('error', () => done({ ttft, completed: false }));
      req.on('response', (res) => {
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          text += chunk;
          if (ttft < 0 && /"(delta|text)":"[^"]/.test(text)) ttft = performance.now() - started;
        });
        res.on('end', () => done({ ttft, completed: res.statusCode === 200 && text.includes('[DONE]') }));
      });
      req.end(JSON.stringify(body));
    });
  const results = await Promise.all(Array.from({ length: count }, (_, i) => one(i)));
  return {
    ttft: percentiles(results.filter((r) => r.ttft >= 0).map((r) => r.ttft)),
    completed: results.filter((r) => r.completed).length,
  };
}

function statusMb(pid: number, field: 'VmHWM' | 'VmRSS'): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Math.round(Number(new RegExp(`${field}:\\s+(\\d+)`).exec(status)?.[1] ?? 0) / 1024);
}
const peakRssMb = (pid: number) => statusMb(pid, 'VmHWM');

/**
 * `npm start` as a newcomer meets it: the default config/models.yaml (`tiny` loaded in the
 * embedded engine), PGlite in a new DATA_DIR, then a second start on the same directory. For
 * each: milliseconds to /healthz 200 and /readyz 200, and RSS once ready (after a second of quiet).
 */
async function runFootprint(): Promise<Record<string, unknown>> {
  const dataDir = mkdtempSync(join(tmpdir(), 'bench-footprint-'));
  const start = async () => {
    const gateway = await startGateway(
      { file: join(ROOT, 'config', 'models.yaml') },
      { adminToken: ADMIN_TOKEN, dataDir },
    );
    try {
      await new Promise((r) => setTimeout(r, 1000));
      return {
        ...gateway.startup,
        ready_rss_mb: statusMb(gateway.child.pid!, 'VmRSS'),
        peak_rss_mb: peakRssMb(gateway.child.pid!),
      };
    } finally {
      await gateway.stop();
    }
  };
  const fresh = await start();
  const again = await start();
  return { target_ready_rss_mb: 250, fresh_data_dir: fresh, existing_data_dir: again };
}

async function adminPost(gateway: string, path: string, body: unknown): Promise<{ id: string }> {
  const res = await fetch(`${gateway}${path}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return (await res.json()) as { id: string };
}

/** The team's spend this month (settlements are written in the background: read once they are). */
async function teamCost(gateway: string, id: string): Promise<number> {
  for (let attempt = 0; ; attempt += 1) {
    const res = await fetch(`${gateway}/admin/teams/${id}`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
    const { usage } = (await res.json()) as { usage: { cost: number; reserved: number } };
    if (usage.reserved === 0 || attempt >= 50) return usage.cost;
    await new Promise((done) => setTimeout(done, 100));
  }
}

async function quotaCounter(gateway: string, id: string): Promise<number> {
  const res = await fetch(`${gateway}/admin/keys/${id}`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
  return ((await res.json()) as { usage: { requests: number } }).usage.requests;
}

type Mode = 'embedded' | 'services';

/** The gateway's environment for a mode: services get a database of their own, dropped by `cleanup`. */
async function modeEnv(mode: Mode): Promise<{ env: Record<string, string>; cleanup: () => Promise<void> }> {
  return mode === 'embedded' ? { env: {}, cleanup: async () => undefined } : servicesDatabase();
}

async function runMode(mode: Mode): Promise<Record<string, unknown>> {
  const { env, cleanup } = await modeEnv(mode);
  const fake = await startFake();
  const gateway = await startUpstreamGateway(fake.url, env);
  const direct = { url: fake.url, path: '/v1/completions' };
  try {
    const free = await createKey(gateway.url, {});
    const through = { url: gateway.url, path: '/v1/generate', key: free.key };
    await load(through, 4, true); // warm-up: JIT, pools, scripts
    await load(direct, 4, true);
    const direct1 = await load(direct, 1, true);
    const miss1 = await load(through, 1, true);
    const direct32 = await load(direct, 32, true);
    const miss32 = await load(through, 32, true);
    await load({ ...through }, 1, false); // the answer to hit
    const hit32 = await load(through, 32, false);
    const quotaKey = await createKey(gateway.url, { monthly_quota: HOT_QUOTA });
    const hot32 = await load({ ...through, key: quotaKey.key }, 32, true, HOT_QUOTA + HOT_OVER);
    const counter = await quotaCounter(gateway.url, quotaKey.id);
    const answered = hot32.requests - hot32.non2xx;
    const team = await adminPost(gateway.url, '/admin/teams', {
      name: 'hot team',
      monthly_budget: Number(((HOT_QUOTA / 4) * ANSWER_COST).toFixed(9)),
    });
    const teamKeys = await Promise.all([0, 1, 2, 3].map(() => createKey(gateway.url, { team_id: team.id })));
    const team32 = await load({ ...through, keys: teamKeys.map((k) => k.key) }, 32, true, HOT_QUOTA + HOT_OVER);
    const teamAnswered = team32.requests - team32.non2xx;
    const teamSpend = await teamCost(gateway.url, team.id);
    return {
      added_latency_1_connection: {
        mean_ms: round(miss1.mean_ms - direct1.mean_ms),
        p99_ms: round(miss1.p99_ms - direct1.p99_ms),
      },
      direct_1: direct1,
      miss_1: miss1,
      direct_32: direct32,
      miss_32: miss32,
      hit_32: hit32,
      hot_key_quota_32: {
        ...hot32,
        quota: HOT_QUOTA,
        answered_2xx: answered,
        quota_counter: counter,
        quota_exact: answered === HOT_QUOTA && counter === HOT_QUOTA && hot32.non2xx === HOT_OVER,
      },
      hot_team_budget_32: {
        ...team32,
        keys: 4,
        budget: (HOT_QUOTA / 4) * ANSWER_COST,
        answered_2xx: teamAnswered,
        spend: teamSpend,
        budget_exact:
          team32.non2xx > 0 &&
          teamSpend <= (HOT_QUOTA / 4) * ANSWER_COST + 1e-12 &&
          (HOT_QUOTA / 4) * ANSWER_COST - teamSpend < ANSWER_COST,
      },
    };
  } finally {
    await gateway.stop();
    await fake.stop();
    await cleanup();
  }
}

async function runStreams(mode: Mode): Promise<Record<string, unknown>> {
  const { env, cleanup } = await modeEnv(mode);
  // 20 tokens/s: one every 50 ms.
  const fake = await startFake(50);
  const gateway = await startUpstreamGateway(fake.url, env);
  try {
    const key = (await createKey(gateway.url, {})).key;
    await streams({ url: gateway.url, path: '/v1/generate', key }, 50); // warm-up
    const direct = await streams({ url: fake.url, path: '/v1/completions' }, STREAMS);
    const through = await streams({ url: gateway.url, path: '/v1/generate', key }, STREAMS);
    return {
      streams: STREAMS,
      completed: through.completed,
      all_completed: through.completed === STREAMS,
      ttft_direct: direct.ttft,
      ttft_gateway: through.ttft,
      added_ttft_p50_ms: round(through.ttft.p50_ms - direct.ttft.p50_ms),
      gateway_peak_rss_mb: peakRssMb(gateway.child.pid!),
      ...(mode === 'embedded' ? { target_peak_rss_mb: 300 } : {}),
    };
  } finally {
    await gateway.stop();
    await fake.stop();
    await cleanup();
  }
}

const round = (ms: number) => Math.round(ms * 1000) / 1000;

async function main(): Promise<void> {
  const only = arg('only', '');
  const servicesWanted =
    process.argv.includes('--services') ||
    (process.env.DATABASE_URL !== undefined && process.env.REDIS_URL !== undefined);
  const result: Record<string, unknown> = { duration_s: DURATION_S, answer_tokens: 16 };
  if (servicesWanted) {
    process.env.DATABASE_URL ??= 'postgres://postgres@127.0.0.1:5432/test';
    process.env.REDIS_URL ??= 'redis://127.0.0.1:6379';
    if (!(await reachable(process.env.DATABASE_URL)) || !(await reachable(process.env.REDIS_URL))) {
      throw new Error('--services: PostgreSQL or Redis is not reachable');
    }
  }
  if (only === '' || only === 'footprint') result.embedded_footprint = await runFootprint();
  if (only !== 'services' && only !== 'streams' && only !== 'footprint') result.embedded = await runMode('embedded');
  if (servicesWanted && only !== 'embedded' && only !== 'streams' && only !== 'footprint')
    result.services = await runMode('services');
  if (only === '' || only === 'streams') {
    // Embedded: what `npm start` holds at its busiest (target: a peak under 300 MB).
    result.sse_embedded = await runStreams('embedded');
    if (servicesWanted) result.sse_services = await runStreams('services');
  }
  writeResult(only ? `gateway-${only}` : 'gateway', result);
  writeFileSync(join(ROOT, 'bench', 'results', only ? `gateway-${only}.svg` : 'gateway.svg'), renderChart(result));
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
