/**
 * Per-key concurrency leases (key field max_concurrent): the same contract in-process and in
 * Redis, the Redis limit shared by replicas, a crashed holder's leases lapsing after their TTL
 * while a live holder's are renewed, and the in-process fallback while Redis is down. Redis
 * runs privately here (redis-server on a free port), so it can be killed.
 */
import { randomBytes } from 'node:crypto';
import { createLogger } from '../src/infra/logging/logger';
import { createRedis, RedisConnection } from '../src/infra/redis/redis.module';
import type { ConcurrencyLeases } from '../src/stores/concurrency/concurrency-leases';
import { MemoryConcurrencyLeases } from '../src/stores/concurrency/memory-concurrency-leases';
import { concurrencyLeases } from '../src/stores/stores.module';
import { sleep, waitFor } from './fakes/fake-server';
import { hasRedisServer, OwnRedis } from './harness/redis-server';
import { TcpProxy } from './harness/tcp-proxy';

const silent = createLogger('silent');

async function eventually(check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await sleep(20);
  }
}

function leaseContract(make: () => ConcurrencyLeases | Promise<ConcurrencyLeases>): void {
  it('grants up to the limit per key, refuses beyond it, and a release frees a slot once', async () => {
    const leases = await make();
    const first = await leases.acquire('k', 2);
    const second = await leases.acquire('k', 2);
    expect([first.granted, first.inFlight, second.granted, second.inFlight]).toEqual([true, 1, true, 2]);
    expect(await leases.acquire('k', 2)).toEqual({ granted: false, inFlight: 2 });
    expect((await leases.acquire('other', 2)).granted).toBe(true);
    if (!first.granted) throw new Error('unreachable');
    first.release();
    first.release(); // twice is once
    // A Redis release is not awaited: wait (bounded) for it to land.
    for (const started = Date.now(); (await leases.inFlight('k')) !== 1 && Date.now() - started < 2000;)
      await sleep(10);
    expect(await leases.inFlight('k')).toBe(1);
    expect((await leases.acquire('k', 2)).granted).toBe(true);
    expect((await leases.acquire('k', 2)).granted).toBe(false);
    await leases.close();
  });
}

describe('MemoryConcurrencyLeases', () => {
  leaseContract(() => new MemoryConcurrencyLeases());
});

(hasRedisServer ? describe : describe.skip)('RedisConcurrencyLeases', () => {
  let redis: OwnRedis;
  const connections: RedisConnection[] = [];
  beforeAll(async () => {
    redis = await OwnRedis.start();
  });
  afterAll(async () => {
    for (const connection of connections) {
      connection.health.close();
      connection.client.disconnect();
    }
    await redis.kill();
  });

  /** One replica's store; replicas made with the same prefix share the leases. */
  async function replica(prefix: string, ttlMs = 30_000, url = redis.url): Promise<ConcurrencyLeases> {
    const connection = new RedisConnection(createRedis(url, 250), prefix, silent);
    connection.client.on('error', (error: Error) => connection.health.markDown(error));
    connections.push(connection);
    await waitFor(() => connection.client.status === 'ready', 5000);
    return concurrencyLeases(connection, ttlMs);
  }
  const prefix = () => `leases-${randomBytes(4).toString('hex')}:`;

  leaseContract(() => replica(prefix()));

  it('holds the limit across replicas', async () => {
    const shared = prefix();
    const [a, b] = [await replica(shared), await replica(shared)];
    expect((await a.acquire('k', 2)).granted).toBe(true);
    expect((await b.acquire('k', 2)).granted).toBe(true);
    expect(await a.acquire('k', 2)).toEqual({ granted: false, inFlight: 2 });
    expect(await b.acquire('k', 2)).toEqual({ granted: false, inFlight: 2 });
    expect(await b.inFlight('k')).toBe(2);
    await Promise.all([a.close(), b.close()]);
  });

  it("a crashed replica's leases lapse after the TTL; a live replica's are renewed", async () => {
    const shared = prefix();
    const crashed = await replica(shared, 300);
    const live = await replica(shared, 300);
    const other = await replica(shared, 300);
    expect((await crashed.acquire('gone', 1)).granted).toBe(true);
    expect((await live.acquire('kept', 1)).granted).toBe(true);
    await crashed.close(); // stops renewing, never releases: a crash
    expect((await other.acquire('gone', 1)).granted).toBe(false);
    await sleep(700); // more than twice the TTL
    expect((await other.acquire('gone', 1)).granted).toBe(true);
    expect(await other.acquire('kept', 1)).toEqual({ granted: false, inFlight: 1 });
    await Promise.all([live.close(), other.close()]);
  });

  it('counts in-process while Redis is down, and in Redis again once it is back', async () => {
    const leases = await replica(prefix());
    await redis.kill();
    try {
      const first = await leases.acquire('k', 1);
      expect(first.granted).toBe(true);
      expect((await leases.acquire('k', 1)).granted).toBe(false);
      if (first.granted) first.release();
      expect((await leases.acquire('k', 1)).granted).toBe(true);
    } finally {
      await redis.restart();
    }
    const connection = connections.at(-1)!;
    await waitFor(() => connection.health.up, 5000);
    expect((await leases.acquire('fresh', 1)).granted).toBe(true);
    expect(await leases.inFlight('fresh')).toBe(1);
    await leases.close();
  });

  describe('leases Redis holds that nobody uses are removed as soon as Redis answers again', () => {
    let proxy: TcpProxy;
    beforeEach(async () => {
      proxy = await TcpProxy.start(redis.url);
    });
    afterEach(async () => {
      await proxy.close();
    });

    it('an acquire that timed out client-side but ran in Redis', async () => {
      const shared = prefix();
      const cut = await replica(shared, 30_000, proxy.urlFor(redis.url));
      const other = await replica(shared);
      await proxy.setMode('late-replies', 600); // the script runs; its answer arrives after the 250 ms timeout
      const lease = await cut.acquire('k', 1);
      expect(lease.granted).toBe(true); // the in-process stand-in answered
      if (lease.granted) lease.release();
      expect(await other.inFlight('k')).toBe(1); // the ghost the timed-out script left
      await proxy.setMode('pass');
      await eventually(async () => (await other.inFlight('k')) === 0, 3000); // not the 30 s TTL
      expect((await other.acquire('k', 1)).granted).toBe(true);
      await Promise.all([cut.close(), other.close()]);
    });

    it('a release Redis did not hear', async () => {
      const shared = prefix();
      const cut = await replica(shared, 30_000, proxy.urlFor(redis.url));
      const other = await replica(shared);
      const lease = await cut.acquire('k', 1);
      expect(lease.granted).toBe(true);
      await proxy.setMode('refuse');
      await waitFor(() => connections.at(-2)!.health.up === false, 3000);
      if (lease.granted) lease.release();
      expect(await other.inFlight('k')).toBe(1);
      await proxy.setMode('pass');
      await eventually(async () => (await other.inFlight('k')) === 0, 3000);
      await Promise.all([cut.close(), other.close()]);
    });
  });
});
