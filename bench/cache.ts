/**
 * A completion-cache hit against a miss, through the whole gateway over loopback HTTP:
 * latency (p50/p99, sequential) and throughput (requests/s at a given concurrency), for the
 * embedded tiny model (a miss runs a real 64-token generation) and for the in-process mock
 * (a miss costs only the gateway's own path).
 *
 *   node -r @swc-node/register bench/cache.ts [--requests N] [--concurrency N]
 *
 * Writes bench/results/cache.json.
 */
import { arg, percentiles, startBenchServer, timedGenerate, tinyModelsYaml, writeResult } from './lib';

const MODELS = tinyModelsYaml({ sequences: 2, maxNewTokens: 256, extra: '  - name: mock\n    provider: mock\n' });

async function throughput(
  run: (i: number) => Promise<unknown>,
  requests: number,
  concurrency: number,
): Promise<number> {
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < requests) await run(next++);
    }),
  );
  return Math.round((requests / (performance.now() - started)) * 1000);
}

async function main(): Promise<void> {
  const requests = Number(arg('requests', '300'));
  const concurrency = Number(arg('concurrency', '8'));
  const server = await startBenchServer(MODELS);
  const results: Record<string, unknown> = {};
  try {
    for (const model of ['tiny', 'mock']) {
      const body = (prompt: string) => ({ model, prompt, max_new_tokens: 64, seed: 1 });
      await timedGenerate(server, body('warm-up'));
      const miss: number[] = [];
      for (let i = 0; i < requests; i += 1) miss.push((await timedGenerate(server, body(`miss ${model} ${i}`))).ms);
      const hit: number[] = [];
      for (let i = 0; i < requests; i += 1) hit.push((await timedGenerate(server, body('warm-up'))).ms);
      const missRps = await throughput(
        (i) => timedGenerate(server, body(`tp miss ${model} ${i}`)),
        requests,
        concurrency,
      );
      const hitRps = await throughput(() => timedGenerate(server, body('warm-up')), requests, concurrency);
      const missLatency = percentiles(miss);
      const hitLatency = percentiles(hit);
      results[model] = {
        miss: { ...missLatency, requests_per_second: missRps },
        hit: { ...hitLatency, requests_per_second: hitRps },
        p50_speedup: Math.round((missLatency.p50_ms / hitLatency.p50_ms) * 10) / 10,
        throughput_ratio: Math.round((hitRps / missRps) * 10) / 10,
      };
    }
  } finally {
    await server.close();
  }
  writeResult('cache', { requests, concurrency, max_new_tokens: 64, store: 'in-process LRU', results });
}

main().catch((error: Error) => {
  console.error(error);
  process.exit(1);
});
