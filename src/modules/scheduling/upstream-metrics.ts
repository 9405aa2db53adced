/**
 * Reads vLLM's own load from its Prometheus endpoint (`GET <base_url>/metrics`) every second,
 * for models with `upstream_metrics: true`: requests running and waiting in the engine and its
 * KV cache use. The engine's queue counts every replica's requests (and any client that bypasses
 * the gateway), which this replica's own in-flight count cannot see.
 *
 * Names: `vllm:num_requests_running`, `vllm:num_requests_waiting`, `vllm:kv_cache_usage_perc`
 * (vLLM >= 0.10; before: `vllm:gpu_cache_usage_perc`). Several series of one name (one per
 * engine or model_name label) are summed; the cache use is their maximum. A scrape that fails
 * leaves the last report to go stale (upstream-slot.ts), so a dead endpoint stops counting.
 */
import { request } from 'undici';
import type { EngineLoad } from './upstream-slot';

export const SCRAPE_INTERVAL_MS = 1000;
const SCRAPE_TIMEOUT_MS = 800;
const MAX_METRICS_BYTES = 4 * 1024 * 1024;

const RUNNING = 'vllm:num_requests_running';
const WAITING = 'vllm:num_requests_waiting';
const KV_CACHE = ['vllm:kv_cache_usage_perc', 'vllm:gpu_cache_usage_perc'];

/** The engine load in a Prometheus text exposition; null when it has neither request gauge. */
export function parseVllmMetrics(text: string, at: number): EngineLoad | null {
  let running: number | null = null;
  let waiting: number | null = null;
  let kvCacheUsage: number | null = null;
  for (const line of text.split('\n')) {
    if (!line.startsWith('vllm:')) continue;
    const nameEnd = line.search(/[{\s]/);
    if (nameEnd < 0) continue;
    const name = line.slice(0, nameEnd);
    const isRunning = name === RUNNING;
    const isWaiting = name === WAITING;
    const isKv = KV_CACHE.includes(name);
    if (!isRunning && !isWaiting && !isKv) continue;
    // The value follows the labels (which may contain spaces inside quotes): after the last '}'.
    const rest = line.slice(line[nameEnd] === '{' ? line.lastIndexOf('}') + 1 : nameEnd).trim();
    const value = Number(rest.split(/\s+/)[0]);
    if (!Number.isFinite(value)) continue;
    if (isRunning) running = (running ?? 0) + value;
    else if (isWaiting) waiting = (waiting ?? 0) + value;
    else kvCacheUsage = Math.max(kvCacheUsage ?? 0, value);
  }
  if (running === null && waiting === null) return null;
  return { running: running ?? 0, waiting: waiting ?? 0, kvCacheUsage, at };
}

/** One scrape of `baseUrl`/metrics; null when it fails or says nothing about requests. */
export async function scrapeVllm(baseUrl: string, signal?: AbortSignal): Promise<EngineLoad | null> {
  try {
    const res = await request(`${baseUrl}/metrics`, {
      signal: signal
        ? AbortSignal.any([signal, AbortSignal.timeout(SCRAPE_TIMEOUT_MS)])
        : AbortSignal.timeout(SCRAPE_TIMEOUT_MS),
      headers: { accept: 'text/plain' },
    });
    if (res.statusCode !== 200) {
      await res.body.dump();
      return null;
    }
    let text = '';
    for await (const chunk of res.body) {
      text += (chunk as Buffer).toString('utf8');
      if (text.length > MAX_METRICS_BYTES) {
        res.body.destroy();
        return null;
      }
    }
    return parseVllmMetrics(text, performance.now());
  } catch {
    return null;
  }
}
