/**
 * Tokens/s of the embedded tiny model through the whole gateway (HTTP, auth, limits, JSON or
 * SSE), to compare with bench/llama-cpp-direct.ts (node-llama-cpp called directly, same model
 * and settings: one thread, one sequence, 256 new tokens). The cache is bypassed (no-store
 * is implied by a distinct seed per run).
 *
 *   node -r @swc-node/register bench/embedded-gateway.ts [--tokens N] [--runs N]
 *
 * Loopback only. Writes bench/results/embedded-gateway.json.
 */
import { arg, percentiles, startBenchServer, timedGenerate, tinyModelsYaml, writeResult } from './lib';

const MODELS = tinyModelsYaml({ sequences: 1, maxNewTokens: 1024 });

async function main(): Promise<void> {
  const tokens = Number(arg('tokens', '256'));
  const runs = Number(arg('runs', '5'));
  const server = await startBenchServer(MODELS);
  const results: Record<string, unknown> = {};
  try {
    await timedGenerate(server, { prompt: 'The quick brown fox', max_new_tokens: tokens, seed: 0 });
    for (const stream of [false, true]) {
      const ms: number[] = [];
      for (let i = 0; i < runs; i += 1) {
        const seed = (stream ? 1000 : 1) + i; // distinct requests: never a cache hit
        const run = await timedGenerate(server, {
          prompt: 'The quick brown fox',
          max_new_tokens: tokens,
          seed,
          stream,
        });
        // tokens/s below assumes every run produced `tokens` tokens (the tiny model never stops early): check it.
        const produced = stream
          ? tokens
          : (run.body as { usage: { completion_tokens: number } }).usage.completion_tokens;
        if (produced !== tokens) throw new Error(`expected ${tokens} tokens, the model produced ${produced}`);
        ms.push(run.ms);
      }
      const latency = percentiles(ms);
      results[stream ? 'streamed' : 'json'] = {
        ...latency,
        tokens_per_second: Math.round((tokens / latency.p50_ms) * 1000),
      };
    }
  } finally {
    await server.close();
  }
  writeResult('embedded-gateway', { model: 'tiny', tokens, runs, ...results });
}

main().catch((error: Error) => {
  console.error(error);
  process.exit(1);
});
