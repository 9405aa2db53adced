/**
 * The cache's parts on their own: the canonical key, both stores, and coalescing (within a
 * replica, and across replicas through Redis in test:services).
 */
import { randomBytes } from 'node:crypto';
import { cacheKey } from '../src/modules/cache/cache-key';
import { type CachedCompletion, type CacheStore } from '../src/stores/cache/cache-store';
import { MemoryCacheStore } from '../src/stores/cache/memory-cache-store';
import { RedisCacheStore } from '../src/stores/cache/redis-cache-store';
import { connectRedis, type RedisConnection } from '../src/infra/redis/redis.module';
import { CompletionCache } from '../src/modules/cache/completion-cache.service';
import type { FlightRunner } from '../src/contracts/flight';
import { Flight } from '../src/modules/cache/flight';
import type { AppConfig } from '../src/infra/config/app.config';
import { createLogger } from '../src/infra/logging/logger';
import { ClientDisconnected, DeadlineExceeded } from '../src/contracts/generation';
import { FakeClock } from './harness/fake-clock';
import { SERVICES_REDIS_URL } from './harness/environment';
import { generationParams, modelConfig } from './fakes/model-config';

const model = modelConfig({ name: 'm', provider: 'vllm', upstreamModel: 'org/m' });
const params = generationParams({
  prompt: 'p',
  maxNewTokens: 16,
  temperature: 1,
  topP: 1,
  topK: 0,
  stop: [],
  seed: null,
});

describe('cacheKey', () => {
  const base = cacheKey(model, params);

  it.each([
    ['prompt', { prompt: 'p2' }],
    ['max_new_tokens', { maxNewTokens: 17 }],
    ['temperature', { temperature: 0.99 }],
    ['top_p', { topP: 0.9 }],
    ['top_k', { topK: 40 }],
    ['stop', { stop: ['x'] }],
    ['seed', { seed: 1 }],
  ])('changes with %s', (_name, change) => {
    expect(cacheKey(model, { ...params, ...change })).not.toBe(base);
  });

  it('changes with the model identity: public name, provider and upstream model', () => {
    expect(cacheKey({ ...model, name: 'other' }, params)).not.toBe(base);
    expect(cacheKey({ ...model, upstreamModel: 'org/m-v2' }, params)).not.toBe(base);
    expect(cacheKey({ ...model, provider: 'ollama' }, params)).not.toBe(base);
  });

  it('covers chat messages: roles, contents and their order', () => {
    const chat = {
      ...params,
      prompt: '',
      messages: [
        { role: 'system' as const, content: 'be brief' },
        { role: 'user' as const, content: 'hi' },
      ],
    };
    const keyOf = (messages: typeof chat.messages) => cacheKey(model, { ...chat, messages });
    expect(keyOf(chat.messages)).toBe(cacheKey(model, { ...chat }));
    expect(keyOf([chat.messages[1], chat.messages[0]])).not.toBe(keyOf(chat.messages));
    expect(keyOf([{ role: 'user', content: 'be brief' }, chat.messages[1]])).not.toBe(keyOf(chat.messages));
    expect(keyOf([chat.messages[0], { role: 'user', content: 'hello' }])).not.toBe(keyOf(chat.messages));
    expect(keyOf(chat.messages)).not.toBe(base);
  });

  it('treats stop as a set and seed 0 as different from no seed', () => {
    expect(cacheKey(model, { ...params, stop: ['a', 'b'] })).toBe(
      cacheKey(model, { ...params, stop: ['b', 'a', 'a'] }),
    );
    expect(cacheKey(model, { ...params, seed: 0 })).not.toBe(base);
  });

  it('is a hash: the prompt never appears in it', () => {
    const key = cacheKey(model, { ...params, prompt: 'a secret prompt' });
    expect(key).toMatch(/^[0-9a-f]{64}$/);
  });
});

const entry = (output: string, expiresAtMs: number): CachedCompletion => ({
  output,
  finishReason: 'stop',
  usage: { promptTokens: 1, completionTokens: 2 },
  model: 'm',
  expiresAtMs,
});

describe('MemoryCacheStore', () => {
  it('expires entries against the given clock', async () => {
    const store = new MemoryCacheStore(10);
    await store.storeAndRelease('k', entry('v', 1000), 0, null);
    expect(await store.get('k', 999)).toMatchObject({ output: 'v' });
    expect(await store.get('k', 1000)).toBeNull();
  });

  it('is bounded and evicts the least recently used', async () => {
    const store = new MemoryCacheStore(2);
    await store.storeAndRelease('a', entry('a', 1e15), 0, null);
    await store.storeAndRelease('b', entry('b', 1e15), 0, null);
    await store.get('a', 0); // a is now the most recent
    await store.storeAndRelease('c', entry('c', 1e15), 0, null);
    expect(store.size).toBe(2);
    expect(await store.get('b', 0)).toBeNull();
    expect(await store.get('a', 0)).not.toBeNull();
    expect(await store.get('c', 0)).not.toBeNull();
  });
});

describe('Flight', () => {
  function controllable() {
    let emit: ((text: string) => void) | null = null;
    let finish: ((output: string) => void) | null = null;
    let fail: ((error: Error) => void) | null = null;
    let accept: (() => void) | null = null;
    let admit: (() => void) | null = null;
    let abortedWith: unknown = null;
    const runner: FlightRunner = (signal, report) =>
      new Promise((resolve, reject) => {
        emit = (text) => report.emit(text, 'm');
        accept = () => report.accepted();
        admit = () => report.admitted();
        finish = (output) =>
          resolve({
            model: 'm',
            result: { output, finishReason: 'stop', usage: { promptTokens: 1, completionTokens: 1 } },
          });
        fail = reject;
        signal.addEventListener('abort', () => {
          abortedWith = signal.reason;
          reject(signal.reason);
        });
      });
    return {
      runner,
      emit: (t: string) => emit!(t),
      accept: () => accept!(),
      admit: () => admit!(),
      finish: (o: string) => finish!(o),
      fail: (e: Error) => fail!(e),
      abortedWith: () => abortedWith,
    };
  }

  it('a late streaming subscriber gets the deltas so far, then live ones', async () => {
    const c = controllable();
    const flight = new Flight(c.runner);
    const early: string[] = [];
    const late: string[] = [];
    const first = flight.subscribe(new AbortController().signal, (t) => early.push(t));
    c.emit('a');
    c.emit('b');
    const second = flight.subscribe(new AbortController().signal, (t) => late.push(t));
    c.emit('c');
    c.finish('abc');
    await Promise.all([first, second]);
    expect(early).toEqual(['a', 'b', 'c']);
    expect(late).toEqual(['a', 'b', 'c']);
  });

  it('tells each subscriber once when the generation got its turn; one joining later at once', async () => {
    const c = controllable();
    const flight = new Flight(c.runner);
    const told: string[] = [];
    const first = flight.subscribe(new AbortController().signal, undefined, () => told.push('first'));
    expect(told).toEqual([]); // still waiting its turn: nothing may be sent to the client
    c.admit();
    c.admit();
    expect(told).toEqual(['first']);
    const second = flight.subscribe(new AbortController().signal, undefined, () => told.push('second'));
    expect(told).toEqual(['first', 'second']);
    c.finish('x');
    await Promise.all([first, second]);
  });

  it('aborts the backend call only when every subscriber has left', async () => {
    const c = controllable();
    const flight = new Flight(c.runner);
    const one = new AbortController();
    const two = new AbortController();
    const first = flight.subscribe(one.signal);
    const second = flight.subscribe(two.signal);
    one.abort(new ClientDisconnected());
    await expect(first).resolves.toMatchObject({ kind: 'left', payer: false });
    expect(c.abortedWith()).toBeNull();
    c.finish('done');
    await expect(second).resolves.toMatchObject({ kind: 'answer', answer: { result: { output: 'done' } } });

    const c2 = controllable();
    const lonely = new Flight(c2.runner);
    const only = new AbortController();
    const waiting = lonely.subscribe(only.signal);
    only.abort(new ClientDisconnected());
    await expect(waiting).resolves.toMatchObject({ kind: 'left', payer: true });
    expect(c2.abortedWith()).toBeInstanceOf(ClientDisconnected);
  });

  it('a client gone before it subscribes leaves at once, and a generation nobody follows is aborted', async () => {
    const c = controllable();
    const flight = new Flight(c.runner);
    const gone = new AbortController();
    gone.abort(new ClientDisconnected());
    await expect(flight.subscribe(gone.signal)).resolves.toMatchObject({ kind: 'left', payer: false });
    expect(c.abortedWith()).toBeInstanceOf(ClientDisconnected);
    expect(flight.abandoned).toBe(true);
  });

  describe('who pays', () => {
    it('the starter, while it stays; the others share', async () => {
      const c = controllable();
      const flight = new Flight(c.runner);
      const starter = flight.subscribe(new AbortController().signal);
      const joiner = flight.subscribe(new AbortController().signal);
      c.finish('x');
      expect(await starter).toMatchObject({ kind: 'answer', payer: true });
      expect(await joiner).toMatchObject({ kind: 'answer', payer: false });
    });

    it('when the starter left, the first one that receives the answer', async () => {
      const c = controllable();
      const flight = new Flight(c.runner);
      const starterLeaves = new AbortController();
      const starter = flight.subscribe(starterLeaves.signal);
      const second = flight.subscribe(new AbortController().signal);
      const third = flight.subscribe(new AbortController().signal);
      starterLeaves.abort(new ClientDisconnected());
      expect(await starter).toMatchObject({ kind: 'left', payer: false, received: 0 });
      c.finish('x');
      expect(await second).toMatchObject({ kind: 'answer', payer: true });
      expect(await third).toMatchObject({ kind: 'answer', payer: false });
    });

    it('an answer another replica produced is paid there: nobody here pays', async () => {
      const flight = new Flight(async () => ({
        model: 'm',
        fromPeer: true,
        result: { output: 'x', finishReason: 'stop', usage: { promptTokens: 1, completionTokens: 1 } },
      }));
      expect(await flight.subscribe(new AbortController().signal)).toMatchObject({ kind: 'answer', payer: false });
    });

    it('the last to leave pays what was produced; progress says whether the backend had the request', async () => {
      const c = controllable();
      const flight = new Flight(c.runner);
      const a = new AbortController();
      const b = new AbortController();
      const first = flight.subscribe(a.signal, () => undefined);
      const second = flight.subscribe(b.signal, () => undefined);
      c.accept();
      c.emit('one');
      c.emit('');
      c.emit('two');
      a.abort(new ClientDisconnected());
      expect(await first).toMatchObject({ kind: 'left', payer: false, received: 2 });
      b.abort(new ClientDisconnected());
      expect(await second).toMatchObject({
        kind: 'left',
        payer: true,
        received: 2,
        progress: { produced: 2, accepted: true, servedBy: 'm' },
      });
    });

    it('a failure reaches every subscriber, the first one attached as payer, with the progress so far', async () => {
      const c = controllable();
      const flight = new Flight(c.runner);
      const first = flight.subscribe(new AbortController().signal);
      const second = flight.subscribe(new AbortController().signal, () => undefined);
      c.emit('a');
      c.fail(new Error('broke'));
      expect(await first).toMatchObject({ kind: 'failed', payer: true, received: 0, progress: { produced: 1 } });
      expect(await second).toMatchObject({ kind: 'failed', payer: false, received: 1 });
    });
  });
});

function cacheFor(store: CacheStore, clock: FakeClock, claimTiming?: { ttlMs: number; renewMs: number }) {
  const config = { cacheTtlSeconds: 60 } as AppConfig;
  return new CompletionCache(config, store, clock, createLogger('silent'), undefined, claimTiming);
}

const noDeadline = () => Date.now() + 60_000;

function countingRunner(delayMs = 30) {
  const calls = { count: 0 };
  const runner: FlightRunner = async (signal, report) => {
    calls.count += 1;
    await new Promise((resolve) => setTimeout(resolve, delayMs));
    signal.throwIfAborted();
    report.emit(' hi', 'm');
    return {
      model: 'm',
      result: { output: ' hi', finishReason: 'stop', usage: { promptTokens: 3, completionTokens: 1 } },
    };
  };
  return { calls, runner };
}

describe('CompletionCache', () => {
  it('policy: model TTL over the global one, 0 disables, no-cache and no-store', () => {
    const cache = cacheFor(new MemoryCacheStore(10), new FakeClock());
    expect(cache.policy(model, undefined)).toEqual({ lookup: true, store: true, share: true, ttlMs: 60_000 });
    expect(cache.policy({ ...model, cacheTtlSeconds: 5 }, undefined).ttlMs).toBe(5000);
    expect(cache.policy({ ...model, cacheTtlSeconds: 0 }, undefined)).toMatchObject({
      lookup: false,
      store: false,
      share: false,
    });
    expect(cache.policy(model, 'no-cache')).toMatchObject({ lookup: false, store: true, share: false });
    expect(cache.policy(model, 'max-age=0, No-Store')).toMatchObject({ lookup: false, store: false, share: false });
  });

  it('20 identical concurrent misses share one backend call; the answer is stored once', async () => {
    const clock = new FakeClock();
    const store = new MemoryCacheStore(10);
    const cache = cacheFor(store, clock);
    const { calls, runner } = countingRunner();
    const policy = cache.policy(model, undefined);
    const results = await Promise.all(
      Array.from({ length: 20 }, () =>
        cache.serve('k', model, policy, new AbortController().signal, runner, noDeadline()),
      ),
    );
    expect(calls.count).toBe(1);
    expect(results.filter((r) => r.source === 'miss')).toHaveLength(1);
    expect(results.filter((r) => r.source === 'coalesced')).toHaveLength(19);
    expect(await cache.lookup('k')).toMatchObject({ output: ' hi', usage: { promptTokens: 3, completionTokens: 1 } });
    clock.advance(60_001);
    expect(await cache.lookup('k')).toBeNull();
  });

  it('does not store failures, no-store answers, or answers of a fallback model', async () => {
    const cache = cacheFor(new MemoryCacheStore(10), new FakeClock());
    const failing: FlightRunner = async () => {
      throw new Error('backend down');
    };
    const failed = await cache.serve(
      'fail',
      model,
      cache.policy(model, undefined),
      new AbortController().signal,
      failing,
      noDeadline(),
    );
    expect(failed.outcome).toMatchObject({ kind: 'failed', error: new Error('backend down') });
    expect(await cache.lookup('fail')).toBeNull();
    await cache.serve(
      'nostore',
      model,
      cache.policy(model, 'no-store'),
      new AbortController().signal,
      countingRunner().runner,
      noDeadline(),
    );
    expect(await cache.lookup('nostore')).toBeNull();
    const fallback: FlightRunner = async () => ({
      model: 'other',
      result: { output: 'x', finishReason: 'stop', usage: { promptTokens: 1, completionTokens: 1 } },
    });
    await cache.serve(
      'fb',
      model,
      cache.policy(model, undefined),
      new AbortController().signal,
      fallback,
      noDeadline(),
    );
    expect(await cache.lookup('fb')).toBeNull();
  });
});

(SERVICES_REDIS_URL ? describe : describe.skip)(
  'across replicas through Redis [needs REDIS_URL: npm run test:services]',
  () => {
    let redis: RedisConnection;
    const prefix = `llm-test-${randomBytes(4).toString('hex')}:`;
    beforeAll(async () => {
      redis = await connectRedis(SERVICES_REDIS_URL!, 1000, prefix, createLogger('silent'));
    });
    afterAll(async () => {
      const keys = await redis.client.keys(`${prefix}*`);
      if (keys.length) await redis.client.del(...keys);
      redis.health.close();
      redis.client.disconnect();
    });
    const replica = (clock: FakeClock, claimTiming?: { ttlMs: number; renewMs: number }) =>
      cacheFor(new RedisCacheStore(redis), clock, claimTiming);

    it('RedisCacheStore keeps values with their expiry', async () => {
      const store = new RedisCacheStore(redis);
      await store.storeAndRelease('k1', entry('v', 10_000), 0, null);
      expect(await store.get('k1', 9_999)).toMatchObject({ output: 'v' });
      expect(await store.get('k1', 10_000)).toBeNull();
      expect(await redis.client.pttl(`${prefix}cache:{k1}`)).toBeGreaterThan(0);
    });

    it('one call looks up or claims: the first miss claims, the next sees it held, the holder stores and releases', async () => {
      const store = new RedisCacheStore(redis);
      const first = await store.lookupOrClaim('k2', 0, 5000);
      expect(first).toEqual({ claim: { token: expect.any(String) } });
      expect(await store.lookupOrClaim('k2', 0, 5000)).toEqual({ heldElsewhere: true });
      expect(await store.isClaimed('k2')).toBe(true);
      await store.storeAndRelease('k2', entry('answer', 10_000), 0, 'claim' in first ? first.claim : null);
      expect(await store.isClaimed('k2')).toBe(false);
      expect(await store.lookupOrClaim('k2', 0, 5000)).toEqual({ hit: expect.objectContaining({ output: 'answer' }) });
    });

    it('two replicas missing at once make one backend call: the other waits for the shared answer', async () => {
      const clock = new FakeClock();
      const replicaA = replica(clock);
      const replicaB = replica(clock);
      const { calls, runner } = countingRunner(200);
      const policy = replicaA.policy(model, undefined);
      const [a, b] = await Promise.all([
        replicaA.serve('shared', model, policy, new AbortController().signal, runner, noDeadline()),
        replicaB.serve('shared', model, policy, new AbortController().signal, runner, noDeadline()),
      ]);
      expect(calls.count).toBe(1);
      expect([a.source, b.source].sort()).toEqual(['coalesced', 'miss']);
      expect(a.outcome).toMatchObject({ kind: 'answer', answer: { result: { output: ' hi' } } });
      expect(b.outcome).toMatchObject({ kind: 'answer', answer: { result: { output: ' hi' } } });
      // The replica that generated pays; the one that received the shared answer does not.
      expect([a, b].map((run) => run.outcome.kind === 'answer' && run.outcome.payer).sort()).toEqual([false, true]);
    });

    it('a follower whose leader fails generates itself instead of waiting out the bound', async () => {
      const clock = new FakeClock();
      const replicaA = replica(clock);
      const replicaB = replica(clock);
      const failing: FlightRunner = async () => {
        await new Promise((resolve) => setTimeout(resolve, 100));
        throw new Error('leader failed');
      };
      const { calls, runner } = countingRunner(10);
      const policy = replicaA.policy(model, undefined);
      const leader = replicaA.serve('leader-fails', model, policy, new AbortController().signal, failing, noDeadline());
      await new Promise((resolve) => setTimeout(resolve, 20));
      const follower = replicaB.serve(
        'leader-fails',
        model,
        policy,
        new AbortController().signal,
        runner,
        noDeadline(),
      );
      expect((await leader).outcome).toMatchObject({ kind: 'failed', error: new Error('leader failed') });
      await expect(follower).resolves.toMatchObject({ source: 'miss', outcome: { kind: 'answer' } });
      expect(calls.count).toBe(1);
    });

    it('a follower never waits for another replica past its own deadline: 504, and the lock holder is unaffected', async () => {
      const clock = new FakeClock();
      const replicaA = replica(clock);
      const replicaB = replica(clock);
      const slow = countingRunner(600);
      const policy = replicaA.policy(model, undefined);
      const holder = replicaA.serve('deadline', model, policy, new AbortController().signal, slow.runner, noDeadline());
      await new Promise((resolve) => setTimeout(resolve, 20));
      const started = Date.now();
      const follower = await replicaB.serve(
        'deadline',
        model,
        policy,
        new AbortController().signal,
        slow.runner,
        Date.now() + 200,
      );
      expect(follower.outcome).toMatchObject({ kind: 'failed', error: new DeadlineExceeded() });
      expect(Date.now() - started).toBeLessThan(500);
      expect((await holder).outcome).toMatchObject({ kind: 'answer', payer: true });
      expect(slow.calls.count).toBe(1);
    });

    it('a claim lasts as long as its holder waits (renewed): another replica waits for the answer instead of generating it too', async () => {
      const clock = new FakeClock();
      const timing = { ttlMs: 300, renewMs: 100 };
      const replicaA = replica(clock, timing);
      const replicaB = replica(clock, timing);
      const queued = countingRunner(1000); // waits its turn far longer than the claim's TTL
      const policy = replicaA.policy(model, undefined);
      const holder = replicaA.serve(
        'renewed',
        model,
        policy,
        new AbortController().signal,
        queued.runner,
        noDeadline(),
      );
      await new Promise((resolve) => setTimeout(resolve, 600));
      const follower = await replicaB.serve(
        'renewed',
        model,
        policy,
        new AbortController().signal,
        queued.runner,
        noDeadline(),
      );
      expect(follower).toMatchObject({ source: 'coalesced', outcome: { kind: 'answer', payer: false } });
      expect((await holder).outcome).toMatchObject({ kind: 'answer', payer: true });
      expect(queued.calls.count).toBe(1);
      expect(await redis.client.exists(`${prefix}cache-lock:{renewed}`)).toBe(0); // given back, no longer renewed
    });

    it('a claim is renewed only by its holder', async () => {
      const store = new RedisCacheStore(redis);
      const first = await store.lookupOrClaim('mine', 0, 5000);
      if (!('claim' in first)) throw new Error('not claimed');
      await store.renewClaim('mine', { token: 'someone else' }, 60_000);
      expect(await redis.client.pttl(`${prefix}cache-lock:{mine}`)).toBeLessThanOrEqual(5000);
      await store.renewClaim('mine', first.claim, 60_000);
      expect(await redis.client.pttl(`${prefix}cache-lock:{mine}`)).toBeGreaterThan(5000);
    });
  },
);
