/**
 * The cache's parts on their own: the canonical key, both stores, and coalescing (within a
 * replica, and across replicas through Redis in test:services).
 */
import Redis from 'ioredis';
import { randomBytes } from 'node:crypto';
import { cacheKey } from '../src/cache/cache-key';
import { type CachedCompletion, MemoryCacheStore, RedisCacheStore } from '../src/cache/cache-store';
import { CompletionCache } from '../src/cache/completion-cache.service';
import { Flight, type FlightRunner } from '../src/cache/flight';
import type { AppConfig } from '../src/config/app.config';
import { createLogger } from '../src/logging/logger';
import { ClientDisconnected } from '../src/generation/generation.errors';
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
    await store.set('k', entry('v', 1000));
    expect(await store.get('k', 999)).toMatchObject({ output: 'v' });
    expect(await store.get('k', 1000)).toBeNull();
  });

  it('is bounded and evicts the least recently used', async () => {
    const store = new MemoryCacheStore(2);
    await store.set('a', entry('a', 1e15));
    await store.set('b', entry('b', 1e15));
    await store.get('a', 0); // a is now the most recent
    await store.set('c', entry('c', 1e15));
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
    let abortedWith: unknown = null;
    const runner: FlightRunner = (signal, onDelta) =>
      new Promise((resolve, reject) => {
        emit = (text) => onDelta(text, 'm');
        finish = (output) =>
          resolve({
            model: 'm',
            result: { output, finishReason: 'stop', usage: { promptTokens: 1, completionTokens: 1 } },
          });
        signal.addEventListener('abort', () => {
          abortedWith = signal.reason;
          reject(signal.reason);
        });
      });
    return { runner, emit: (t: string) => emit!(t), finish: (o: string) => finish!(o), abortedWith: () => abortedWith };
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

  it('aborts the backend call only when every subscriber has left', async () => {
    const c = controllable();
    const flight = new Flight(c.runner);
    const one = new AbortController();
    const two = new AbortController();
    const first = flight.subscribe(one.signal);
    const second = flight.subscribe(two.signal);
    one.abort(new ClientDisconnected());
    await expect(first).rejects.toBeInstanceOf(ClientDisconnected);
    expect(c.abortedWith()).toBeNull();
    c.finish('done');
    await expect(second).resolves.toMatchObject({ result: { output: 'done' } });

    const c2 = controllable();
    const lonely = new Flight(c2.runner);
    const only = new AbortController();
    const waiting = lonely.subscribe(only.signal);
    only.abort(new ClientDisconnected());
    await expect(waiting).rejects.toBeInstanceOf(ClientDisconnected);
    expect(c2.abortedWith()).toBeInstanceOf(ClientDisconnected);
  });
});

function cacheFor(
  store: MemoryCacheStore | RedisCacheStore,
  clock: FakeClock,
  redis: Redis | null = null,
  prefix = 'test:',
) {
  const config = { cacheTtlSeconds: 60, redisPrefix: prefix } as AppConfig;
  return new CompletionCache(config, store, redis, clock, createLogger('silent'));
}

function countingRunner(delayMs = 30) {
  const calls = { count: 0 };
  const runner: FlightRunner = async (signal, emit) => {
    calls.count += 1;
    await new Promise((resolve) => setTimeout(resolve, delayMs));
    signal.throwIfAborted();
    emit(' hi', 'm');
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
      Array.from({ length: 20 }, () => cache.run('k', model, policy, new AbortController().signal, runner)),
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
    await expect(
      cache.run('fail', model, cache.policy(model, undefined), new AbortController().signal, failing),
    ).rejects.toThrow('backend down');
    expect(await cache.lookup('fail')).toBeNull();
    await cache.run(
      'nostore',
      model,
      cache.policy(model, 'no-store'),
      new AbortController().signal,
      countingRunner().runner,
    );
    expect(await cache.lookup('nostore')).toBeNull();
    const fallback: FlightRunner = async () => ({
      model: 'other',
      result: { output: 'x', finishReason: 'stop', usage: { promptTokens: 1, completionTokens: 1 } },
    });
    await cache.run('fb', model, cache.policy(model, undefined), new AbortController().signal, fallback);
    expect(await cache.lookup('fb')).toBeNull();
  });
});

(SERVICES_REDIS_URL ? describe : describe.skip)(
  'across replicas through Redis [needs REDIS_URL: npm run test:services]',
  () => {
    let redis: Redis;
    const prefix = `llm-test-${randomBytes(4).toString('hex')}:`;
    beforeAll(() => {
      redis = new Redis(SERVICES_REDIS_URL!);
    });
    afterAll(async () => {
      const keys = await redis.keys(`${prefix}*`);
      if (keys.length) await redis.del(...keys);
      redis.disconnect();
    });

    it('RedisCacheStore keeps values with their expiry', async () => {
      const store = new RedisCacheStore(redis, prefix);
      await store.set('k1', entry('v', 10_000), 0);
      expect(await store.get('k1', 9_999)).toMatchObject({ output: 'v' });
      expect(await store.get('k1', 10_000)).toBeNull();
      expect(await redis.pttl(`${prefix}cache:k1`)).toBeGreaterThan(0);
    });

    it('two replicas missing at once make one backend call: the other waits for the shared answer', async () => {
      const clock = new FakeClock();
      const replicaA = cacheFor(new RedisCacheStore(redis, prefix), clock, redis, prefix);
      const replicaB = cacheFor(new RedisCacheStore(redis, prefix), clock, redis, prefix);
      const { calls, runner } = countingRunner(200);
      const policy = replicaA.policy(model, undefined);
      const [a, b] = await Promise.all([
        replicaA.run('shared', model, policy, new AbortController().signal, runner),
        replicaB.run('shared', model, policy, new AbortController().signal, runner),
      ]);
      expect(calls.count).toBe(1);
      expect([a.source, b.source].sort()).toEqual(['coalesced', 'miss']);
      expect(a.answer.result.output).toBe(b.answer.result.output);
    });

    it('a follower whose leader fails generates itself instead of waiting out the bound', async () => {
      const clock = new FakeClock();
      const replicaA = cacheFor(new RedisCacheStore(redis, prefix), clock, redis, prefix);
      const replicaB = cacheFor(new RedisCacheStore(redis, prefix), clock, redis, prefix);
      const failing: FlightRunner = async () => {
        await new Promise((resolve) => setTimeout(resolve, 100));
        throw new Error('leader failed');
      };
      const { calls, runner } = countingRunner(10);
      const policy = replicaA.policy(model, undefined);
      const leader = replicaA.run('leader-fails', model, policy, new AbortController().signal, failing);
      await new Promise((resolve) => setTimeout(resolve, 20));
      const follower = replicaB.run('leader-fails', model, policy, new AbortController().signal, runner);
      await expect(leader).rejects.toThrow('leader failed');
      await expect(follower).resolves.toMatchObject({ source: 'miss' });
      expect(calls.count).toBe(1);
    });
  },
);
