/**
 * A fake vLLM that behaves like a GPU server under load (on top of FakeVllm's wire format):
 * - `capacity` sequences run at once; requests beyond wait in a FIFO (vLLM's scheduler), and
 *   leave it when their client goes;
 * - a stream's first token comes after a prefill delay, each further token after `tokenDelayMs`;
 * - a simulated prefix cache: the prefill is `hitPrefillMs` when the prompt's first
 *   `prefixChars` (chat: the messages before the last user turn) were seen recently by this
 *   instance (an LRU of `cacheEntries` prefixes), else `missPrefillMs`;
 * - `GET /metrics` in vLLM's exposition format (`vllm:num_requests_running`,
 *   `vllm:num_requests_waiting`, `vllm:kv_cache_usage_perc`), or what `reportedLoad` says;
 * - `pause()` holds every request that got a sequence until `resume()` (deterministic tests);
 * - `started`: the prompts in the order they got a sequence.
 */
import type { ServerResponse } from 'node:http';
import type { RecordedRequest } from './fake-server';
import { sleep } from './fake-server';
import { FakeVllm } from './fake-vllm';

export interface GpuOptions {
  capacity?: number;
  tokenDelayMs?: number;
  hitPrefillMs?: number;
  missPrefillMs?: number;
  prefixChars?: number;
  cacheEntries?: number;
}

interface Body {
  prompt?: unknown;
  messages?: { role: string; content: string }[];
}

export class FakeGpu extends FakeVllm {
  capacity = 8;
  tokenDelayMs = 0;
  hitPrefillMs = 0;
  missPrefillMs = 0;
  prefixChars = 256;
  cacheEntries = 16;
  running = 0;
  readonly fifo: (() => void)[] = [];
  readonly started: string[] = [];
  prefixHits = 0;
  prefixMisses = 0;
  /** Overrides the numbers /metrics reports (null: the real ones). */
  reportedLoad: { running: number; waiting: number; kvCacheUsage: number } | null = null;
  private readonly prefixes = new Map<string, true>();
  private gate: { promise: Promise<void>; open: () => void } | null = null;

  static async startGpu(options: GpuOptions = {}): Promise<FakeGpu> {
    const fake = new FakeGpu();
    Object.assign(fake, options);
    await fake.listen();
    return fake;
  }

  pause(): void {
    if (this.gate) return;
    let open = () => undefined as void;
    const promise = new Promise<void>((resolve) => (open = resolve));
    this.gate = { promise, open };
  }

  resume(): void {
    this.gate?.open();
    this.gate = null;
  }

  override reset(): void {
    super.reset();
    this.resume();
    this.started.length = 0;
    this.prefixHits = 0;
    this.prefixMisses = 0;
    this.reportedLoad = null;
    this.prefixes.clear();
  }

  /** Completion requests received (every POST). */
  get posts(): number {
    return this.requests.filter((r) => r.method === 'POST').length;
  }

  protected override async handle(req: RecordedRequest, res: ServerResponse, isClosed: () => boolean): Promise<void> {
    if (req.method === 'GET' && req.path === '/metrics') {
      const load = this.reportedLoad ?? {
        running: this.running,
        waiting: this.fifo.length,
        kvCacheUsage: this.running / this.capacity,
      };
      const labels = '{engine="0",model_name="fake"}';
      res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' });
      res.end(
        [
          '# HELP vllm:num_requests_running Number of requests in model execution batches.',
          '# TYPE vllm:num_requests_running gauge',
          `vllm:num_requests_running${labels} ${load.running.toFixed(1)}`,
          '# TYPE vllm:num_requests_waiting gauge',
          `vllm:num_requests_waiting${labels} ${load.waiting.toFixed(1)}`,
          '# TYPE vllm:kv_cache_usage_perc gauge',
          `vllm:kv_cache_usage_perc${labels} ${load.kvCacheUsage}`,
          '',
        ].join('\n'),
      );
      return;
    }
    if (req.method !== 'POST') return super.handle(req, res, isClosed);
    if (!(await this.sequence(res, isClosed))) return;
    try {
      const body = (req.body ?? {}) as Body;
      this.started.push(typeof body.prompt === 'string' ? body.prompt : (body.messages?.at(-1)?.content ?? ''));
      if (this.gate) await this.gate.promise;
      await sleep(this.prefill(body));
      if (isClosed()) return;
      if (this.mode === 'normal' || this.mode === 'slow') {
        this.mode = this.tokenDelayMs > 0 ? 'slow' : 'normal';
        this.delayMs = this.tokenDelayMs;
      }
      await super.handle(req, res, isClosed);
    } finally {
      this.running -= 1;
      this.fifo.shift()?.();
    }
  }

  /** Waits for a free sequence (FIFO); false when the client left meanwhile. */
  private async sequence(res: ServerResponse, isClosed: () => boolean): Promise<boolean> {
    if (this.running >= this.capacity) {
      await new Promise<void>((resolve) => {
        const turn = () => {
          res.off('close', gone);
          resolve();
        };
        const gone = () => {
          const at = this.fifo.indexOf(turn);
          if (at >= 0) this.fifo.splice(at, 1);
          resolve();
        };
        res.once('close', gone);
        this.fifo.push(turn);
      });
      if (isClosed()) return false;
    }
    this.running += 1;
    return true;
  }

  private prefill(body: Body): number {
    const messages = body.messages;
    const text =
      typeof body.prompt === 'string'
        ? body.prompt
        : (messages ?? [])
            .slice(0, -1)
            .map((m) => `${m.role}:${m.content}`)
            .join('\n');
    const prefix = text.slice(0, this.prefixChars);
    const hit = this.prefixes.delete(prefix);
    this.prefixes.set(prefix, true); // most recent last
    if (this.prefixes.size > this.cacheEntries) this.prefixes.delete(this.prefixes.keys().next().value!);
    if (hit) this.prefixHits += 1;
    else this.prefixMisses += 1;
    return hit ? this.hitPrefillMs : this.missPrefillMs;
  }
}
