/**
 * Regression tests for races and leaks found in review: stale key lookups cached after a
 * change, an abandoned shared generation joined by a new request, listener pile-up on slow
 * streaming clients, and admin saves overwriting quota counters.
 */
import { EventEmitter } from 'node:events';
import type { Response } from 'express';
import { DataSource } from 'typeorm';
import { KeyCache } from '../src/modules/auth/key-cache';
import { MemoryCacheStore } from '../src/stores/cache/memory-cache-store';
import { CompletionCache } from '../src/modules/cache/completion-cache.service';
import type { FlightRunner } from '../src/contracts/flight';
import type { AppConfig } from '../src/infra/config/app.config';
import { ClientDisconnected } from '../src/contracts/generation';
import { SseWriter } from '../src/http/responses/sse-writer';
import { createLogger } from '../src/infra/logging/logger';
import { startTestApp } from './harness/app';
import { describeInProcess } from './harness/environment';
import { adminAuth, createKey } from './harness/keys';
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
  maxConcurrent: null,
  priority: 'normal' as const,
  weight: 1,
  monthlyBudget: null,
  team: null,
};

describe('KeyCache', () => {
  it('does not cache a lookup that started before an invalidation', () => {
    const cache = new KeyCache();
    const readIn = cache.epoch; // a lookup reads the database...
    cache.invalidate('k1'); // ...while the key is revoked or rotated
    cache.set('hash', key, 0, readIn);
    expect(cache.get('hash', 1, 60_000)).toBeUndefined();
    cache.set('hash', key, 0, cache.epoch);
    expect(cache.get('hash', 1, 60_000)).toEqual(key);
  });
});

describe('CompletionCache', () => {
  it('a request arriving after every waiter left starts a new generation instead of joining the aborted one', async () => {
    const config = { cacheTtlSeconds: 60 } as AppConfig;
    const cache = new CompletionCache(config, new MemoryCacheStore(10), new FakeClock(), createLogger('silent'));
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
    const deadline = Date.now() + 60_000;
    const first = cache.serve('k', model, policy, leaving.signal, runner, deadline);
    leaving.abort(new ClientDisconnected());
    // In the same tick: the aborted flight has not settled (nor left the map) yet.
    const secondRun = cache.serve('k', model, policy, new AbortController().signal, runner, deadline);
    await expect(first).resolves.toMatchObject({ outcome: { kind: 'left' } });
    const second = await secondRun;
    expect(second).toMatchObject({ source: 'miss', outcome: { kind: 'answer', answer: { result: { output: 'ok' } } } });
    expect(calls).toBe(2);
  });
});

/** A response whose client never reads: every write reports a full buffer. */
class StalledResponse extends EventEmitter {
  destroyed = false;
  destroy() {
    this.destroyed = true;
    this.emit('close');
  }
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
    const sse = new SseWriter(res as unknown as Response, { stallTimeoutMs: 60_000, heartbeatMs: 60_000 });
    const closeListenersAtRest = res.listenerCount('close');
    const sent = Array.from({ length: 2000 }, (_, i) => sse.event({ i }));
    await new Promise((resolve) => setImmediate(resolve));
    expect(res.listenerCount('close')).toBeLessThanOrEqual(closeListenersAtRest + 1);
    expect(res.listenerCount('drain')).toBeLessThanOrEqual(1);
    const pump = setInterval(() => res.emit('drain'), 0);
    await Promise.all(sent);
    clearInterval(pump);
    const events = res.written.join('').split('\n\n').filter(Boolean);
    expect(events.map((line) => JSON.parse(line.slice(6)).i)).toEqual(Array.from({ length: 2000 }, (_, i) => i));
    expect(res.listenerCount('close')).toBe(closeListenersAtRest);
    expect(res.listenerCount('drain')).toBe(0);
    res.emit('close'); // the client goes: the heartbeat stops
  });

  it('writes the events queued in one turn of the event loop in one write', async () => {
    const res = new StalledResponse();
    res.write = (text: string) => {
      res.written.push(text);
      return true;
    };
    const sse = new SseWriter(res as unknown as Response, { stallTimeoutMs: 60_000, heartbeatMs: 60_000 });
    const first = [sse.event({ i: 0 }), sse.event({ i: 1 }), sse.event({ i: 2 })];
    await Promise.all(first);
    await sse.event({ i: 3 });
    expect(res.written).toEqual(['data: {"i":0}\n\ndata: {"i":1}\n\ndata: {"i":2}\n\n', 'data: {"i":3}\n\n']);
    await sse.done();
    res.emit('close');
  });

  it('disconnects a reader that takes nothing for the stall bound', async () => {
    const res = new StalledResponse();
    const sse = new SseWriter(res as unknown as Response, { stallTimeoutMs: 100, heartbeatMs: 60_000 });
    const started = Date.now();
    await sse.event({ i: 0 });
    expect(res.destroyed).toBe(true);
    expect(Date.now() - started).toBeGreaterThanOrEqual(90);
  });

  it('sends a comment while there is nothing to send, so proxies keep the stream open', async () => {
    const res = new StalledResponse();
    res.write = (text: string) => {
      res.written.push(text);
      return true;
    };
    const sse = new SseWriter(res as unknown as Response, { stallTimeoutMs: 60_000, heartbeatMs: 50 });
    const beats = () => res.written.join('').split(': keep-alive\n\n').length - 1;
    // Two beats 50 ms apart; a loaded machine may run the timer late, so wait for them (bounded).
    for (const started = Date.now(); beats() < 2 && Date.now() - started < 5000;) {
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    await sse.done();
    expect(beats()).toBeGreaterThanOrEqual(2);
    expect(res.written.join('')).toMatch(/^(: keep-alive\n\n)+data: \[DONE\]\n\n$/);
  });
});

describeInProcess('admin changes and quota counters', 'writes the counters directly', () => {
  it('a change to a key never writes back stale quota counters', async () => {
    const app = await startTestApp();
    try {
      const { id } = await createKey(app, { monthly_quota: 100 });
      const db = app.app!.get(DataSource);
      // Reservations land while the admin works on the key.
      await db.query('UPDATE api_keys SET quota_requests_used = 7, quota_tokens_used = 1234 WHERE id = $1', [id]);
      const res = await app
        .http()
        .patch(`/admin/keys/${id}`)
        .set(...adminAuth())
        .send({ name: 'renamed' });
      expect(res.status).toBe(200);
      const view = await app
        .http()
        .get(`/admin/keys/${id}`)
        .set(...adminAuth());
      expect(view.body).toMatchObject({ name: 'renamed', usage: { requests: 7, tokens: 1234 } });
    } finally {
      await app.close();
    }
  });
});
