/**
 * Scheduling for GPU backends, measured against fakes that behave like GPU servers
 * (test/fakes/fake-gpu.ts: a capacity of concurrent sequences, a FIFO beyond it, a per-token
 * delay, a prefix cache), with the real gateway in this process:
 *
 * - fairness: a heavy key with 64 concurrent streams and a light key with 2, against 2 upstreams
 *   of capacity 8 (prefill 50 ms, 30 ms per token; the upstreams and the heavy key's client run in
 *   child processes, as they would on other machines). The light key's latency (p50, p99) alone, with scheduling off (no
 *   max_in_flight, round robin: the flood fills the engines' FIFOs) and on (max_in_flight 8 per
 *   upstream, the fair queue, least_outstanding). Target: light p99 with scheduling within 1.5×
 *   of alone.
 * - prefix: 16 system prompts (requests pick one at random, each with its own question), open-loop
 *   arrivals at a fixed rate, 2 upstreams whose prefix cache holds 10 prefixes each (the working
 *   set fits the two caches together, not one); prefill 150 ms on a miss, 15 ms on a hit. Round robin (`weighted`) against `prefix_affinity`: prefix
 *   cache hit rate, TTFT and throughput. Target: hit rate >= 80 % and mean TTFT >= 30 % lower.
 *
 *   node -r @swc-node/register bench/fairness.ts [--seconds 8] [--rate 40]
 *
 * Writes bench/results/fairness.json and bench/results/fairness.svg.
 */
import 'reflect-metadata';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { FakeGpu } from '../test/fakes/fake-gpu';
import { type Group, twoPanelChart } from './chart';
import { arg, type BenchServer, percentiles, startBenchServer, writeResult } from './lib';

const SECONDS = Number(arg('seconds', '8'));
const RATE = Number(arg('rate', '40'));
const TOKENS = 8;

async function stream(server: BenchServer, key: string, body: Record<string, unknown>) {
  const started = performance.now();
  const res = await fetch(`${server.base}/v1/generate`, {
    method: 'POST',
    headers: { 'x-api-key': key, 'content-type': 'application/json' },
    body: JSON.stringify({ ...body, stream: true, max_new_tokens: TOKENS }),
  });
  let ttft: number | null = null;
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    if (ttft === null && decoder.decode(value, { stream: true }).includes('"delta"')) {
      ttft = performance.now() - started;
    }
  }
  if (res.status !== 200) throw new Error(`HTTP ${res.status}`);
  return { ms: performance.now() - started, ttftMs: ttft ?? performance.now() - started };
}

/** GPU fakes in a child process (bench/fake-gpu-upstream.ts): their CPU is not the gateway's. */
async function spawnGpus(count: number, options: Record<string, number>) {
  const child = spawn(
    process.execPath,
    [
      '-r',
      '@swc-node/register',
      join(__dirname, 'fake-gpu-upstream.ts'),
      '--count',
      String(count),
      '--options',
      JSON.stringify(options),
    ],
    { cwd: join(__dirname, '..'), stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const urls = await new Promise<string[]>((done) =>
    child.stdout!.once('data', (chunk: Buffer) => done(JSON.parse(chunk.toString()) as string[])),
  );
  return {
    urls,
    stop: () =>
      new Promise<void>((done) => {
        child.once('exit', () => done());
        child.kill('SIGTERM');
      }),
  };
}

function modelsYaml(upstreams: { url: string }[], scheduling: string): string {
  return `default_model: gpu
models:
  - name: gpu
    provider: vllm
    upstream_model: m
    cache_ttl_seconds: 0
    max_new_tokens: 64
    timeout_ms: 120000
${scheduling}
    upstreams:
${upstreams.map((upstream) => `      - base_url: ${upstream.url}`).join('\n')}
`;
}

/** Closed-loop workers of one key until `until`; returns each request's latency. */
async function workers(server: BenchServer, key: string, count: number, until: number, tag: string) {
  const latencies: number[] = [];
  let n = 0;
  await Promise.all(
    Array.from({ length: count }, async () => {
      while (performance.now() < until) {
        latencies.push((await stream(server, key, { prompt: `${tag} request ${(n += 1)}` })).ms);
      }
    }),
  );
  return latencies;
}

/** The heavy key's 64 streams, run by this script in a child process (`--role heavy`). */
async function heavyProcess(base: string, key: string): Promise<number[]> {
  const child = spawn(
    process.execPath,
    [
      '-r',
      '@swc-node/register',
      __filename,
      '--role',
      'heavy',
      '--base',
      base,
      '--key',
      key,
      '--seconds',
      String(SECONDS),
    ],
    { cwd: join(__dirname, '..'), stdio: ['ignore', 'pipe', 'inherit'] },
  );
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  await new Promise((done) => child.once('exit', done));
  return JSON.parse(output) as number[];
}

async function fairnessRun(mode: 'alone' | 'off' | 'on') {
  const gpus = await spawnGpus(2, { capacity: 8, tokenDelayMs: 30, missPrefillMs: 50, hitPrefillMs: 50 });
  const scheduling =
    mode === 'on'
      ? '    max_in_flight: 8\n    queue: { max_length: 1000, max_wait_ms: 60000 }\n    load_balancing: least_outstanding'
      : '    load_balancing: weighted';
  const server = await startBenchServer(
    modelsYaml(
      gpus.urls.map((url) => ({ url })),
      scheduling,
    ),
  );
  try {
    const heavy = await server.createKey({ name: 'heavy' });
    const light = await server.createKey({ name: 'light' });
    const until = performance.now() + SECONDS * 1000;
    // The flood comes from another process, like real clients: its CPU is not the gateway's.
    const [heavyLatencies, lightLatencies] = await Promise.all([
      mode === 'alone' ? Promise.resolve([]) : heavyProcess(server.base, heavy),
      workers(server, light, 2, until, 'light'),
    ]);
    return {
      light: { requests: lightLatencies.length, ...percentiles(lightLatencies) },
      heavy: heavyLatencies.length > 0 ? { requests: heavyLatencies.length, ...percentiles(heavyLatencies) } : null,
    };
  } finally {
    await server.close();
    await gpus.stop();
  }
}

const SYSTEM_PROMPTS = Array.from({ length: 16 }, (_, i) =>
  `System prompt ${i}: you are assistant number ${i}; answer tersely and cite sources. `.repeat(5),
);

async function prefixRun(policy: 'weighted' | 'prefix_affinity') {
  const options = { capacity: 8, tokenDelayMs: 5, missPrefillMs: 150, hitPrefillMs: 15, cacheEntries: 10 };
  const gpus = [await FakeGpu.startGpu(options), await FakeGpu.startGpu(options)];
  for (const gpu of gpus) gpu.recordRequests = false;
  const server = await startBenchServer(modelsYaml(gpus, `    load_balancing: ${policy}`));
  try {
    // Deterministic "random" prompt choice, the same for both policies.
    let seed = 12345;
    const next = () => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return (seed >>> 16) % SYSTEM_PROMPTS.length; // an LCG's low bits cycle: use the high ones
    };
    const results: Promise<{ ms: number; ttftMs: number }>[] = [];
    const started = performance.now();
    const total = RATE * SECONDS;
    for (let i = 0; i < total; i += 1) {
      const due = started + (i * 1000) / RATE;
      const wait = due - performance.now();
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
      results.push(stream(server, server.key, { prompt: `${SYSTEM_PROMPTS[next()]}Question ${i}?` }));
    }
    const done = await Promise.all(results);
    const elapsed = (performance.now() - started) / 1000;
    const hits = gpus.reduce((sum, gpu) => sum + gpu.prefixHits, 0);
    const misses = gpus.reduce((sum, gpu) => sum + gpu.prefixMisses, 0);
    return {
      requests: done.length,
      throughput_rps: Math.round((done.length / elapsed) * 100) / 100,
      prefix_cache_hit_rate: Math.round((hits / (hits + misses)) * 1000) / 1000,
      ttft: percentiles(done.map((r) => r.ttftMs)),
      latency: percentiles(done.map((r) => r.ms)),
      per_upstream: gpus.map((gpu) => gpu.prefixHits + gpu.prefixMisses),
    };
  } finally {
    await server.close();
    await Promise.all(gpus.map((gpu) => gpu.close()));
  }
}

function chart(result: {
  fairness: Record<'alone' | 'off' | 'on', Awaited<ReturnType<typeof fairnessRun>>>;
  prefix: Record<'weighted' | 'prefix_affinity', Awaited<ReturnType<typeof prefixRun>>>;
}): string {
  const { fairness, prefix } = result;
  const light: Group[] = [
    {
      label: 'light key alone',
      bars: [
        { label: 'p50', value: fairness.alone.light.p50_ms },
        { label: 'p99', value: fairness.alone.light.p99_ms },
      ],
    },
    {
      label: 'with the flood, scheduling off',
      bars: [
        { label: 'p50', value: fairness.off.light.p50_ms },
        { label: 'p99', value: fairness.off.light.p99_ms },
      ],
    },
    {
      label: 'with the flood, scheduling on',
      bars: [
        { label: 'p50', value: fairness.on.light.p50_ms },
        { label: 'p99', value: fairness.on.light.p99_ms },
      ],
    },
  ];
  const ttft: Group[] = (['weighted', 'prefix_affinity'] as const).map((policy) => ({
    label: `${policy === 'weighted' ? 'round robin' : 'prefix_affinity'} (hit rate ${(prefix[policy].prefix_cache_hit_rate * 100).toFixed(0)} %)`,
    bars: [
      { label: 'TTFT mean', value: prefix[policy].ttft.mean_ms },
      { label: 'TTFT p99', value: prefix[policy].ttft.p99_ms },
    ],
  }));
  return twoPanelChart(
    { title: 'Light key latency next to a 64-stream flood (ms)', unit: 'ms', groups: light },
    { title: 'Shared-prefix workload: time to first token (ms)', unit: 'ms', groups: ttft },
  );
}

async function main(): Promise<void> {
  if (arg('role', 'main') === 'heavy') {
    const server = { base: arg('base', ''), key: arg('key', '') } as BenchServer;
    const latencies = await workers(server, server.key, 64, performance.now() + SECONDS * 1000, 'heavy');
    process.stdout.write(JSON.stringify(latencies));
    return;
  }
  const fairness = { alone: await fairnessRun('alone'), off: await fairnessRun('off'), on: await fairnessRun('on') };
  const prefix = { weighted: await prefixRun('weighted'), prefix_affinity: await prefixRun('prefix_affinity') };
  const targets = {
    light_p99_on_over_alone: Math.round((fairness.on.light.p99_ms / fairness.alone.light.p99_ms) * 100) / 100,
    light_p99_off_over_alone: Math.round((fairness.off.light.p99_ms / fairness.alone.light.p99_ms) * 100) / 100,
    ttft_mean_reduction:
      Math.round((1 - prefix.prefix_affinity.ttft.mean_ms / prefix.weighted.ttft.mean_ms) * 1000) / 1000,
  };
  writeResult('fairness', {
    seconds: SECONDS,
    setup: {
      fairness:
        '2 upstreams (in a child process), capacity 8 each, prefill 50 ms, 5-8 tokens at 30 ms; heavy key 64 streams (from a child process), light key 2 (closed loop)',
      prefix: `2 upstreams, capacity 8, prefix cache of 10 prefixes each; 16 system prompts; ${RATE} req/s open loop; prefill 150 ms miss / 15 ms hit; 8 tokens at 5 ms`,
    },
    fairness,
    prefix,
    targets,
  });
  writeFileSync('bench/results/fairness.svg', chart({ fairness, prefix }));
}

void main().then(() => process.exit(0));
