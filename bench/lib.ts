/** Small helpers shared by the benchmarks: arguments, percentiles, results, an in-process server. */
import 'reflect-metadata';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import type { AddressInfo } from 'node:net';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { loadConfig } from '../src/infra/config/app.config';
import { createLogger } from '../src/infra/logging/logger';
import { createApp } from '../src/server';

export function arg(name: string, fallback: string): string {
  const at = process.argv.indexOf(`--${name}`);
  return at > 0 ? process.argv[at + 1] : fallback;
}

const round = (ms: number) => Math.round(ms * 1000) / 1000;

export function percentiles(samples: number[]): { p50_ms: number; p99_ms: number; mean_ms: number } {
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (p: number) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))];
  return {
    p50_ms: round(at(0.5)),
    p99_ms: round(at(0.99)),
    mean_ms: round(samples.reduce((a, b) => a + b, 0) / samples.length),
  };
}

/** Writes bench/results/<name>.json (relative to the working directory) and prints it. */
export function writeResult(name: string, result: Record<string, unknown>): void {
  const output = {
    bench: name,
    at: new Date().toISOString(),
    node: process.version,
    cpus: cpus().length,
    load_1m: loadavg()[0],
    ...result,
  };
  saveResult(name, output);
}

/** Writes `output` as is to bench/results/<name>.json and prints it (for a bench with its own header fields). */
export function saveResult(name: string, output: Record<string, unknown>): void {
  mkdirSync('bench/results', { recursive: true });
  writeFileSync(`bench/results/${name}.json`, JSON.stringify(output, null, 2) + '\n');
  console.log(JSON.stringify(output, null, 2));
}

/** Whether a TCP connection to the URL's host and port opens within 2 s (is a service up?). */
export function reachable(url: string): Promise<boolean> {
  const { hostname, port } = new URL(url);
  return new Promise((done) => {
    const socket = connect({ host: hostname, port: Number(port) }, () => {
      socket.end();
      done(true);
    });
    socket.on('error', () => done(false));
    socket.setTimeout(2000, () => {
      socket.destroy();
      done(false);
    });
  });
}

export interface BenchServer {
  base: string;
  key: string;
  /** Creates another key through the admin API (scheduling fields included). */
  createKey(fields: Record<string, unknown>): Promise<string>;
  app: NestExpressApplication;
  close(): Promise<void>;
}

/** The real server in this process on a loopback port, embedded mode, with one generous key. */
export async function startBenchServer(modelsYaml: string, env: Record<string, string> = {}): Promise<BenchServer> {
  const dir = mkdtempSync(join(tmpdir(), 'bench-'));
  const modelsFile = join(dir, 'models.yaml');
  writeFileSync(modelsFile, modelsYaml.replaceAll('$DIR', dir));
  const adminToken = randomBytes(24).toString('hex');
  const config = loadConfig({
    DATABASE_URL: 'pglite://memory',
    MODELS_FILE: modelsFile,
    ADMIN_TOKEN: adminToken,
    DATA_DIR: dir,
    LOG_LEVEL: 'error',
    BACKEND_PROBE_INTERVAL_MS: '0',
    ...env,
  });
  const app = await createApp(config, createLogger('error'));
  await app.listen(0, '127.0.0.1');
  const base = `http://127.0.0.1:${(app.getHttpServer().address() as AddressInfo).port}`;
  const createKey = async (fields: Record<string, unknown>): Promise<string> => {
    const created = await fetch(`${base}/admin/keys`, {
      method: 'POST',
      headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'bench', rpm_limit: 10_000_000, ...fields }),
    }).then((res) => res.json() as Promise<{ key: string }>);
    return created.key;
  };
  return { base, key: await createKey({}), createKey, app, close: () => app.close() };
}

/** One POST /v1/generate; resolves with its wall time in ms and the parsed body (JSON) or text (SSE). */
export async function timedGenerate(
  server: BenchServer,
  body: Record<string, unknown>,
): Promise<{ ms: number; body: unknown }> {
  const started = performance.now();
  const res = await fetch(`${server.base}/v1/generate`, {
    method: 'POST',
    headers: { 'x-api-key': server.key, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  const ms = performance.now() - started;
  if (res.status !== 200) throw new Error(`HTTP ${res.status}: ${text}`);
  return { ms, body: body.stream ? text : JSON.parse(text) };
}

/** models.yaml text whose default is the embedded tiny model (written on first start into the bench's temp dir). */
export function tinyModelsYaml(options: { sequences: number; maxNewTokens: number; extra?: string }): string {
  return `default_model: tiny
models:
  - name: tiny
    provider: llama-cpp
    model_path: $DIR/tiny.gguf
    generate_if_missing: true
    threads: 1
    context_size: 2048
    sequences: ${options.sequences}
    max_new_tokens: ${options.maxNewTokens}
${options.extra ?? ''}`;
}
