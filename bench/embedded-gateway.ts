/**
 * Tokens/s of the embedded tiny model through the whole gateway (HTTP, auth, validation,
 * JSON/SSE), to compare with bench/llama-cpp-direct.ts (node-llama-cpp called directly, same
 * model and settings: one thread, greedy-free sampling, 256 new tokens).
 *
 *   node -r @swc-node/register bench/embedded-gateway.ts [--tokens N] [--runs N]
 *
 * Loopback only. Writes bench/results/embedded-gateway.json and prints it.
 */
import 'reflect-metadata';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { loadConfig } from '../src/config/app.config';
import { createLogger } from '../src/logging/logger';
import { createApp } from '../src/server';

function arg(name: string, fallback: number): number {
  const at = process.argv.indexOf(`--${name}`);
  return at > 0 ? Number(process.argv[at + 1]) : fallback;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function main(): Promise<void> {
  const tokens = arg('tokens', 256);
  const runs = arg('runs', 5);
  const dir = mkdtempSync(join(tmpdir(), 'bench-embedded-'));
  const modelsFile = join(dir, 'models.yaml');
  writeFileSync(
    modelsFile,
    `default_model: tiny\nmodels:\n  - name: tiny\n    provider: llama-cpp\n    model_path: ${join(dir, 'tiny.gguf')}\n    generate_if_missing: true\n    threads: 1\n    context_size: 2048\n    sequences: 1\n    max_new_tokens: 1024\n`,
  );
  const adminToken = randomBytes(24).toString('hex');
  const config = loadConfig({ DATABASE_URL: 'pglite://memory', MODELS_FILE: modelsFile, ADMIN_TOKEN: adminToken, DATA_DIR: dir, LOG_LEVEL: 'warn' });
  const app = await createApp(config, createLogger('warn'));
  await app.listen(0, '127.0.0.1');
  const base = `http://127.0.0.1:${(app.getHttpServer().address() as AddressInfo).port}`;
  try {
    const created = await fetch(`${base}/admin/keys`, {
      method: 'POST',
      headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'bench', rpm_limit: 100000 }),
    }).then((res) => res.json() as Promise<{ key: string }>);
    const generate = async (stream: boolean, seed: number) => {
      const started = performance.now();
      const res = await fetch(`${base}/v1/generate`, {
        method: 'POST',
        headers: { 'x-api-key': created.key, 'content-type': 'application/json' },
        body: JSON.stringify({ prompt: 'The quick brown fox', max_new_tokens: tokens, seed, stream }),
      });
      const text = await res.text();
      const ms = performance.now() - started;
      if (res.status !== 200) throw new Error(`HTTP ${res.status}: ${text}`);
      return { ms, tokensPerSecond: (tokens / ms) * 1000 };
    };
    await generate(false, 0); // warm-up
    const results: Record<string, { median_ms: number; median_tokens_per_second: number }> = {};
    for (const stream of [false, true]) {
      const samples = [];
      for (let i = 0; i < runs; i += 1) samples.push(await generate(stream, i + 1));
      results[stream ? 'streamed' : 'json'] = {
        median_ms: Math.round(median(samples.map((s) => s.ms)) * 10) / 10,
        median_tokens_per_second: Math.round(median(samples.map((s) => s.tokensPerSecond))),
      };
    }
    const output = { bench: 'embedded-gateway', model: 'tiny', tokens, runs, node: process.version, at: new Date().toISOString(), ...results };
    mkdirSync('bench/results', { recursive: true });
    writeFileSync('bench/results/embedded-gateway.json', JSON.stringify(output, null, 2) + '\n');
    console.log(JSON.stringify(output, null, 2));
  } finally {
    await app.close();
  }
}

main().catch((error: Error) => {
  console.error(error);
  process.exit(1);
});
