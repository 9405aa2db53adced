/**
 * Regression tests for races and leaks found in review: stale key lookups cached after a
 * change, an abandoned shared generation joined by a new request, listener pile-up on slow
 * streaming clients, and admin saves overwriting quota counters.
 */
import { EventEmitter } from 'node:events';
import type { Response } from 'express';
import { DataSource } from 'typeorm';
import { KeyCache } from '../src/auth/key-cache';
import { ApiKeyEntity } from '../src/auth/entities/api-key.entity';
import { MemoryCacheStore } from '../src/cache/cache-store';
import { CompletionCache } from '../src/cache/completion-cache.service';
import type { FlightRunner } from '../src/cache/flight';
import type { AppConfig } from '../src/config/app.config';
import { ClientDisconnected } from '../src/generation/generation.errors';
import { SseWriter } from '../src/generation/sse-writer';
import { createLogger } from '../src/logging/logger';
import { startTestApp } from './harness/app';
import { describeInProcess } from './harness/environment';
import { createKey } from './harness/keys';
import { FakeClock } from './harness/fake-clock';
import { modelConfig } from './fakes/model-config';

const key = {
  id: 'k1',
  name: 'n',
  rpmLimit: null,
  tpmLimit: null,
  monthlyQuota: null,
  monthlyTokenQuota: null,
  models: null,
  active: true,
  expiresAt: null,
  revokedAt: null,
};

describe('KeyCache', () => {
  it('does not cache a lookup that started before an invalidation', () => {
    const cache = new KeyCache(60_000);
    const readIn = cache.epoch; // a lookup reads the database...
    cache.invalidate('k1'); // ...while the key is revoked or rotated
    cache.set('hash', key, 0, readIn);
    expect(cache.get('hash', 1)).toBeUndefined();
    cache.set('hash', key, 0, cache.epoch);
    expect(cache.get('hash', 1)).toEqual(key);
  });
});

describe('CompletionCache', () => {
  it('a request arriving after every waiter left starts a new generation instead of joining the aborted one', async () => {
    const config = { cacheTtlSeconds: 60, redisPrefix: 'x:' } as AppConfig;
    const cache = new CompletionCache(config, new MemoryCacheStore(10), null, new FakeClock(), createLogger('silent'));
    const model = modelConfig({ name: 'm' });
    let calls = 0;
    const runner: FlightRunner = (signal) => {
      calls += 1;
      return new Promise((resolve, reject) => {
        signal.addEventListener('abort', () => reject(signal.reason));
        setTimeout(
          () =>
            resolve({
              model: 'm',
              result: { output: 'ok', finishReason: 'stop', usage: { promptTokens: 1, completionTokens: 1 } },
            }),
          20,
        );
      });
    };
    const policy = cache.policy(model, undefined);
    const leaving = new AbortController();
    const first = cache.run('k', model, policy, leaving.signal, runner);
    leaving.abort(new ClientDisconnected());
    // In the same tick: the aborted flight has not settled (nor left the map) yet.
    const secondRun = cache.run('k', model, policy, new AbortController().signal, runner);
    await expect(first).rejects.toBeInstanceOf(ClientDisconnected);
    const second = await secondRun;
    expect(second).toMatchObject({ source: 'miss', answer: { result: { output: 'ok' } } });
    expect(calls).toBe(2);
  });
});

/** A response whose client never reads: every write reports a full buffer. */
class StalledResponse extends EventEmitter {
  destroyed = false;
  writableEnded = false;
  written: string[] = [];
  status() {
    return this;
  }
  setHeader() {}
  flushHeaders() {}
  write(text: string) {
    this.written.push(text);
    return false;
  }
  end() {
    this.writableEnded = true;
  }
}

describe('SseWriter', () => {
  it('keeps one drain wait for a slow reader, and writes every event in order once it drains', async () => {
    const res = new StalledResponse();
    const sse = new SseWriter(res as unknown as Response);
    const sent = Array.from({ length: 2000 }, (_, i) => sse.event({ i }));
    await new Promise((resolve) => setImmediate(resolve));
    expect(res.listenerCount('close')).toBeLessThanOrEqual(1);
    expect(res.listenerCount('drain')).toBeLessThanOrEqual(1);
    const pump = setInterval(() => res.emit('drain'), 0);
    await Promise.all(sent);
    clearInterval(pump);
    expect(res.written.map((line) => JSON.parse(line.slice(6)).i)).toEqual(Array.from({ length: 2000 }, (_, i) => i));
    expect(res.listenerCount('close') + res.listenerCount('drain')).toBe(0);
  });
});

describeInProcess('admin changes and quota counters', 'uses the app’s data source', () => {
  it('saving a key never writes back stale quota counters', async () => {
    const app = await startTestApp();
    try {
      const { id } = await createKey(app, { monthly_quota: 100 });
      const keys = app.app!.get(DataSource).getRepository(ApiKeyEntity);
      const row = (await keys.findOneBy({ id }))!;
      // Reservations land between the admin's read and its save.
      await app
        .app!.get(DataSource)
        .query('UPDATE api_keys SET quota_requests_used = 7, quota_tokens_used = 1234 WHERE id = $1', [id]);
      row.name = 'renamed';
      await keys.save(row);
      const after = (await keys.findOneBy({ id }))!;
      expect(after).toMatchObject({ name: 'renamed', quotaRequestsUsed: 7, quotaTokensUsed: 1234 });
    } finally {
      await app.close();
    }
  });
});
