/**
 * The scheduling parts on their own: the fair queue's order (priority classes, deficit round
 * robin by weight, removal), vLLM /metrics parsing (current and older names), the prefix a
 * request is routed by, the hash ring's stability, and admission without max_in_flight (never
 * waits, observes nothing).
 */
import type { Candidate } from '../src/modules/scheduling/model-registry';
import type { LlmProvider } from '../src/modules/providers/provider.types';
import { UpstreamBreaker } from '../src/modules/scheduling/upstream-breaker';
import { FairQueue } from '../src/modules/scheduling/fair-queue';
import { type Admission, ModelScheduler } from '../src/modules/scheduling/model-scheduler';
import { affinityText, HashRing, PREFIX_IDLE_MS, PrefixPlacement } from '../src/modules/scheduling/prefix-affinity';
import { parseVllmMetrics } from '../src/modules/scheduling/upstream-metrics';
import { UpstreamSlot } from '../src/modules/scheduling/upstream-slot';
import { generationParams, modelConfig } from './fakes/model-config';

function drain<T>(queue: FairQueue<T>): T[] {
  const out: T[] = [];
  for (let item = queue.pop(); item !== undefined; item = queue.pop()) out.push(item);
  return out;
}

describe('FairQueue', () => {
  it('serves a higher priority class first, FIFO within one key', () => {
    const queue = new FairQueue<string>();
    queue.push('low', 'a', 1, 'low-1');
    queue.push('normal', 'a', 1, 'normal-1');
    queue.push('low', 'a', 1, 'low-2');
    queue.push('high', 'b', 1, 'high-1');
    expect(queue.size).toBe(4);
    expect(queue.sizeOf('low')).toBe(2);
    expect(drain(queue)).toEqual(['high-1', 'normal-1', 'low-1', 'low-2']);
    expect(queue.size).toBe(0);
  });

  it('deficit round robin: each key gets its weight per round, whatever it has waiting', () => {
    const queue = new FairQueue<string>();
    for (let i = 1; i <= 5; i += 1) queue.push('normal', 'flood', 1, `flood-${i}`);
    for (let i = 1; i <= 4; i += 1) queue.push('normal', 'heavy', 2, `heavy-${i}`);
    queue.push('normal', 'light', 1, 'light-1');
    expect(drain(queue)).toEqual([
      'flood-1',
      'heavy-1',
      'heavy-2',
      'light-1',
      'flood-2',
      'heavy-3',
      'heavy-4',
      'flood-3',
      'flood-4',
      'flood-5',
    ]);
  });

  it('a key that arrives while others flood is served within one round', () => {
    const queue = new FairQueue<string>();
    for (let i = 1; i <= 100; i += 1) queue.push('normal', 'flood', 1, `flood-${i}`);
    expect(queue.pop()).toBe('flood-1');
    queue.push('normal', 'late', 1, 'late-1');
    expect([queue.pop(), queue.pop()]).toEqual(['flood-2', 'late-1']);
  });

  it('removes a waiter that gave up, wherever it is; an idle key keeps no credit', () => {
    const queue = new FairQueue<string>();
    queue.push('normal', 'a', 3, 'a-1');
    queue.push('normal', 'a', 3, 'a-2');
    queue.push('normal', 'b', 1, 'b-1');
    expect(queue.remove('normal', 'a', 'a-2')).toBe(true);
    expect(queue.remove('normal', 'a', 'a-2')).toBe(false);
    expect(queue.remove('high', 'b', 'b-1')).toBe(false);
    expect(queue.pop()).toBe('a-1'); // a leaves the round with credit 2 unused
    queue.push('normal', 'a', 3, 'a-3');
    expect(drain(queue)).toEqual(['b-1', 'a-3']);
  });
});

describe('parseVllmMetrics', () => {
  it('reads running, waiting and KV cache use, summing engines', () => {
    const text = [
      '# HELP vllm:num_requests_running Number of requests in model execution batches.',
      '# TYPE vllm:num_requests_running gauge',
      'vllm:num_requests_running{engine="0",model_name="meta-llama/Llama 3"} 3.0',
      'vllm:num_requests_running{engine="1",model_name="meta-llama/Llama 3"} 2.0',
      'vllm:num_requests_waiting{engine="0",model_name="meta-llama/Llama 3"} 4.0',
      'vllm:kv_cache_usage_perc{engine="0",model_name="m"} 0.5',
      'vllm:kv_cache_usage_perc{engine="1",model_name="m"} 0.75',
      'vllm:num_requests_waiting_by_reason{reason="capacity"} 99',
      'vllm:prompt_tokens_total{model_name="m"} 12345.0',
    ].join('\n');
    expect(parseVllmMetrics(text, 7)).toEqual({ running: 5, waiting: 4, kvCacheUsage: 0.75, at: 7 });
  });

  it('understands the older gpu_cache_usage_perc, and says nothing without request gauges', () => {
    const old = 'vllm:num_requests_running{model_name="m"} 1\nvllm:gpu_cache_usage_perc{model_name="m"} 0.25\n';
    expect(parseVllmMetrics(old, 0)).toEqual({ running: 1, waiting: 0, kvCacheUsage: 0.25, at: 0 });
    expect(parseVllmMetrics('process_cpu_seconds_total 3\n', 0)).toBeNull();
    expect(parseVllmMetrics('<html>not metrics</html>', 0)).toBeNull();
  });
});

describe('prefix affinity', () => {
  it('routes a chat by the messages before its last user turn; a prompt by its start', () => {
    const system = { role: 'system' as const, content: 'Be brief.' };
    const chat = (question: string) =>
      affinityText(generationParams({ prompt: '', messages: [system, { role: 'user', content: question }] }));
    expect(chat('What is 2+2?')).toBe(chat('Name a colour.'));
    const alone = affinityText(generationParams({ prompt: '', messages: [{ role: 'user', content: 'Hi' }] }));
    expect(alone).toContain('Hi');
    expect(affinityText(generationParams({ prompt: 'x'.repeat(300) + 'a' }))).toBe(
      affinityText(generationParams({ prompt: 'x'.repeat(300) + 'b' })),
    );
  });

  it('consistent hashing: losing an upstream moves only the prefixes it held', () => {
    const slots = ['a:1', 'b:1', 'c:1'].map((label) => slot(label));
    const full = new HashRing(slots);
    const reduced = new HashRing(slots.slice(0, 2));
    let moved = 0;
    for (let i = 0; i < 300; i += 1) {
      const before = full.walk(`prefix ${i}`)[0];
      const after = reduced.walk(`prefix ${i}`)[0];
      if (before !== slots[2]) expect(after).toBe(before);
      else moved += 1;
    }
    expect(moved).toBeGreaterThan(50); // c held about a third
    expect(moved).toBeLessThan(150);
  });

  it('bounded placement: each upstream holds at most 1.25 × its share of the prefixes in use, where a plain ring splits them unevenly', () => {
    const prefixes = Array.from({ length: 16 }, (_, i) => `system prompt ${i}`);
    let unevenRings = 0;
    for (let pair = 0; pair < 20; pair += 1) {
      const slots = [slot(`10.0.0.1:${8000 + pair}`), slot(`10.0.0.2:${8000 + pair}`)];
      const ring = new HashRing(slots);
      const onRingHome = prefixes.filter((prefix) => ring.walk(prefix)[0] === slots[0]).length;
      if (Math.max(onRingHome, 16 - onRingHome) > 10) unevenRings += 1;
      const placement = new PrefixPlacement(slots);
      const homes = new Map(prefixes.map((prefix) => [prefix, placement.order(prefix)[0]]));
      expect(Math.max(...placement.prefixesHeld)).toBeLessThanOrEqual(10); // ceil(1.25 × 16 / 2)
      // Sticky: the same prefixes again, in another order, keep their homes.
      for (const prefix of [...prefixes].reverse()) expect(placement.order(prefix)[0]).toBe(homes.get(prefix));
      expect(placement.prefixesHeld).toEqual([
        [...homes.values()].filter((home) => home === slots[0]).length,
        [...homes.values()].filter((home) => home === slots[1]).length,
      ]);
    }
    expect(unevenRings).toBeGreaterThan(0); // what the bound is for: some rings give one upstream 11 or more
  });

  it('a prefix idle for PREFIX_IDLE_MS no longer counts; a broken ring home is not given new prefixes', () => {
    let now = 0;
    const breaker = () => new UpstreamBreaker({ failures: 1, cooldownMs: 60_000 });
    const slots = [slot('a:1', Infinity, breaker()), slot('b:1', Infinity, breaker())];
    const placement = new PrefixPlacement(slots, () => now);
    for (let i = 0; i < 8; i += 1) placement.order(`old ${i}`);
    expect(placement.prefixesHeld.reduce((a, b) => a + b)).toBe(8);
    now += PREFIX_IDLE_MS - 1;
    placement.order('old 0'); // still in use: seen again
    now += 2;
    placement.order('new');
    expect(placement.prefixesHeld.reduce((a, b) => a + b)).toBe(2); // old 0 and new

    const ring = new HashRing(slots);
    const prefix = Array.from({ length: 50 }, (_, i) => `p${i}`).find((p) => ring.walk(p)[0] === slots[0])!;
    slots[0].candidate.breaker.failure();
    expect(slots[0].usable).toBe(false);
    const fresh = new PrefixPlacement(slots, () => now);
    expect(fresh.order(prefix)).toEqual([slots[1], slots[0]]);
  });
});

describe('ModelScheduler without max_in_flight', () => {
  it('admits at once, never queues and observes no wait', () => {
    const events = { waited: jest.fn(), shed: jest.fn() };
    const slots = [slot('a:1'), slot('b:1')];
    const scheduler = new ModelScheduler(modelConfig(), slots, events, () => undefined);
    expect(scheduler.limited).toBe(false);
    const admissions = Array.from({ length: 100 }, () => {
      const admission = scheduler.admit(
        { keyId: 'k', priority: 'normal', weight: 1 },
        generationParams(),
        new AbortController().signal,
      );
      if (admission instanceof Promise) throw new Error('waited');
      return admission;
    });
    expect(slots.map((s) => s.inFlight)).toEqual([50, 50]); // least outstanding spreads evenly
    for (const admission of admissions) admission.release();
    expect(slots.map((s) => s.inFlight)).toEqual([0, 0]);
    expect(events.waited).not.toHaveBeenCalled();
  });
});

function slot(label: string, maxInFlight = Infinity, breaker = new UpstreamBreaker(null)): UpstreamSlot {
  const provider = { upstreamLabel: label } as LlmProvider;
  const candidate: Candidate = { model: modelConfig(), provider, breaker };
  return new UpstreamSlot(candidate, 1, maxInFlight);
}

describe('ModelScheduler with max_in_flight (API.md "Scheduling")', () => {
  const params = generationParams();
  const cls = (keyId: string, priority: 'high' | 'normal' | 'low' = 'normal') => ({ keyId, priority, weight: 1 });

  function limited(maxLength: number, breaker = new UpstreamBreaker(null), maxInFlight = 1) {
    const events = { waited: jest.fn(), shed: jest.fn() };
    const model = modelConfig({ queue: { maxLength, maxWaitMs: 30_000 } });
    const slots = [slot('a:1', maxInFlight, breaker)];
    return { scheduler: new ModelScheduler(model, slots, events, () => undefined), slots, events };
  }

  /** Admits a request; a waiting one is returned with how it ended so far. */
  function arrive(scheduler: ModelScheduler, keyId: string, priority: 'high' | 'normal' | 'low' = 'normal') {
    const controller = new AbortController();
    const admitted = scheduler.admit(cls(keyId, priority), params, controller.signal);
    const state: { admission?: Admission; error?: Error } = {};
    Promise.resolve(admitted).then(
      (admission) => (state.admission = admission),
      (error: Error) => (state.error = error),
    );
    return { state, leave: () => controller.abort(new Error('client left')) };
  }

  const settled = () => new Promise((resolve) => setImmediate(resolve));
  const overloaded = expect.objectContaining({ code: 'overloaded' });

  it('a full queue: a high arrival displaces the newest waiter of the key holding the most places below it', async () => {
    const { scheduler } = limited(3);
    arrive(scheduler, 'busy-low', 'low'); // takes the one slot
    const low = [1, 2, 3].map(() => arrive(scheduler, 'flood', 'low'));
    await settled();
    expect(scheduler.queued).toBe(3);
    const high = arrive(scheduler, 'urgent', 'high');
    await settled();
    expect(high.state.error).toBeUndefined(); // it waits, in place of the flood's newest
    expect(low.map((waiter) => waiter.state.error)).toEqual([undefined, undefined, overloaded]);
    expect(scheduler.queued).toBe(3);
  });

  it('an arrival is refused itself when its own key holds the most places (a tie too), or nobody at its priority or below waits', async () => {
    const { scheduler } = limited(2);
    arrive(scheduler, 'holder');
    const [first, second] = [arrive(scheduler, 'a'), arrive(scheduler, 'b')];
    await settled();
    const tie = arrive(scheduler, 'a'); // a holds 1, b holds 1: a does not push b out
    await settled();
    expect(tie.state.error).toEqual(overloaded);
    const low = arrive(scheduler, 'c', 'low'); // only normal waiters: nothing at low or below
    await settled();
    expect(low.state.error).toEqual(overloaded);
    expect([first.state.error, second.state.error]).toEqual([undefined, undefined]);
    const fresh = arrive(scheduler, 'd'); // holds none: displaces the newest of a key holding one
    await settled();
    expect(fresh.state.error).toBeUndefined();
    expect([first.state.error, second.state.error].filter(Boolean)).toHaveLength(1);
  });

  it('waiters are dispatched the moment the breaker cooldown ends, without another arrival or release', async () => {
    const breaker = new UpstreamBreaker({ failures: 1, cooldownMs: 100 });
    const { scheduler } = limited(10, breaker);
    const running = arrive(scheduler, 'k');
    const waiter = arrive(scheduler, 'k');
    await settled();
    expect(breaker.tryAcquire(running.state.admission)).toBe(true);
    breaker.failure(); // the running request's upstream failed: open
    running.state.admission!.release();
    await settled();
    expect(waiter.state.admission).toBeUndefined(); // nothing usable: still waiting
    await sleep(150);
    expect(waiter.state.admission).toBeDefined();
    expect(breaker.tryAcquire(waiter.state.admission)).toBe(true); // it holds the probe
  });

  it('a half-open upstream gets its one probe and nothing else until it answers', async () => {
    let now = 0;
    const breaker = new UpstreamBreaker({ failures: 1, cooldownMs: 100 }, undefined, () => now);
    breaker.failure();
    now = 100; // cooldown over: half-open
    const { scheduler, slots } = limited(10, breaker, 5);
    const probe = arrive(scheduler, 'k');
    const others = [arrive(scheduler, 'k'), arrive(scheduler, 'k')];
    await settled();
    expect(probe.state.admission).toBeDefined();
    expect(others.map((other) => other.state.admission)).toEqual([undefined, undefined]); // waiting, not failing
    expect(others.map((other) => other.state.error)).toEqual([undefined, undefined]);
    expect(slots[0].inFlight).toBe(1);
    expect(breaker.tryAcquire()).toBe(false); // nobody else may take it
    expect(breaker.tryAcquire(probe.state.admission)).toBe(true); // its own attempt may
    breaker.success();
    probe.state.admission!.release();
    await settled();
    expect(others.every((other) => other.state.admission)).toBe(true);
  });

  it('a probe whose request made no attempt (its client left) passes to the next waiter', async () => {
    let now = 0;
    const breaker = new UpstreamBreaker({ failures: 1, cooldownMs: 100 }, undefined, () => now);
    breaker.failure();
    now = 100;
    const { scheduler } = limited(10, breaker, 5);
    const probe = arrive(scheduler, 'k');
    const next = arrive(scheduler, 'k');
    await settled();
    probe.state.admission!.release(); // never tried
    await settled();
    expect(next.state.admission).toBeDefined();
    expect(breaker.tryAcquire(next.state.admission)).toBe(true);
  });
});

async function sleep(ms: number): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, ms));
}
