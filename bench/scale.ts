/**
 * WORKERS on this machine (issue 28, README "Scaling out"): requests per second through the
 * gateway with WORKERS=1 and WORKERS=2, cache misses (a new prompt each time, each one a call to
 * the fake vLLM) and cache hits (the same prompt), and the gateway's CPU time per request (user +
 * system of the primary and its workers, from /proc), three runs each. On PostgreSQL + Redis
 * (DATABASE_URL, REDIS_URL; each run a database of its own), production settings.
 *
 * Everything shares this machine's cores: the load generator (autocannon, this process) and the
 * fake upstream (its own process) compete with the workers, so WORKERS=2 on 2 cores shows what
 * the gateway gains when it is not alone on them, not what it gains on dedicated cores; CPU per
 * request is the figure that carries over to another machine.
 *
 *   DATABASE_URL=... REDIS_URL=... node -r @swc-node/register bench/scale.ts [--duration 8] [--runs 3] [--workers 1,2]
 *
 * Writes bench/results/scale.json.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { arg, writeResult } from './lib';
import { createKey, load, type LoadResult, servicesDatabase, startFake, startUpstreamGateway } from './upstream-load';

const DURATION_S = Number(arg('duration', '8'));
const RUNS = Number(arg('runs', '3'));
const CONNECTIONS = Number(arg('connections', '32'));
const ADMIN_TOKEN = randomBytes(24).toString('hex');
const TICKS_PER_S = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());

/** CPU seconds (user + system) of `pid` and of its children now alive (the workers). */
function cpuSeconds(pid: number): number {
  let children: number[] = [];
  try {
    children = execFileSync('pgrep', ['-P', String(pid)], { encoding: 'utf8' })
      .split('\n')
      .filter(Boolean)
      .map(Number);
  } catch {
    // no children (WORKERS=1)
  }
  return [pid, ...children].reduce((sum, each) => {
    const fields = readFileSync(`/proc/${each}/stat`, 'utf8').split(') ')[1].split(' ');
    return sum + (Number(fields[11]) + Number(fields[12])) / TICKS_PER_S;
  }, 0);
}

interface Measured extends LoadResult {
  cpu_ms_per_request: number;
}

async function measured(pid: number, run: () => Promise<LoadResult>): Promise<Measured> {
  const before = cpuSeconds(pid);
  const result = await run();
  const cpuMs = (cpuSeconds(pid) - before) * 1000;
  return { ...result, cpu_ms_per_request: Math.round((cpuMs / Math.max(1, result.requests)) * 1000) / 1000 };
}

async function oneRun(workers: number): Promise<{ miss: Measured; hit: Measured }> {
  const { env, cleanup } = await servicesDatabase();
  const fake = await startFake();
  const gateway = await startUpstreamGateway(fake.url, { ...env, WORKERS: String(workers) }, ADMIN_TOKEN);
  try {
    const { key } = await createKey(gateway.url, ADMIN_TOKEN, {});
    const target = { url: gateway.url, path: '/v1/generate', key };
    await load(target, 8, true, { durationS: 2 }); // warm-up: JIT, pools, scripts, every worker
    const pid = gateway.child.pid!;
    const miss = await measured(pid, () => load(target, CONNECTIONS, true, { durationS: DURATION_S }));
    await load(target, 1, false, { durationS: 1 }); // the answer to hit
    const hit = await measured(pid, () => load(target, CONNECTIONS, false, { durationS: DURATION_S }));
    return { miss, hit };
  } finally {
    await gateway.stop();
    await fake.stop();
    await cleanup();
  }
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

async function main(): Promise<void> {
  if (!process.env.DATABASE_URL || !process.env.REDIS_URL) throw new Error('set DATABASE_URL and REDIS_URL');
  const cases: Record<string, unknown> = {};
  for (const workers of arg('workers', '1,2').split(',').map(Number)) {
    const runs = [];
    for (let i = 0; i < RUNS; i += 1) runs.push(await oneRun(workers));
    cases[`workers_${workers}`] = {
      runs,
      median: {
        miss_rps: median(runs.map((run) => run.miss.rps)),
        hit_rps: median(runs.map((run) => run.hit.rps)),
        miss_cpu_ms_per_request: median(runs.map((run) => run.miss.cpu_ms_per_request)),
        hit_cpu_ms_per_request: median(runs.map((run) => run.hit.cpu_ms_per_request)),
      },
    };
  }
  writeResult('scale', {
    note: 'load generator (autocannon), fake vLLM and gateway share the machine; CPU per request is the gateway processes only',
    duration_s: DURATION_S,
    connections: CONNECTIONS,
    ...cases,
  });
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
