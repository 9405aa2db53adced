/**
 * Redis Cluster (issue 28): two replicas on the three-master cluster `npm run test:scale` starts.
 * The services suite runs on it too (rate limits, quotas, max_concurrent, cache and coalescing
 * across two replicas); this file checks what only a cluster can get wrong: the keys really
 * spread over the masters, every key of one script in one slot, and key changes (the replica
 * bus: PUBLISH from a script on one node, SUBSCRIBE on another) reaching the other replica.
 */
import Redis, { Cluster } from 'ioredis';
import { startTestApp, type TestApp } from '../harness/app';
import { adminAuth, createKey } from '../harness/keys';
import { redisKeys } from '../../src/infra/redis/redis-keys';
import { startRedisCluster } from '../harness/scale-services';

const CLUSTER_NODES = process.env.REDIS_CLUSTER_NODES ?? '';
const describeCluster = CLUSTER_NODES && process.env.DATABASE_URL ? describe : describe.skip;

describeCluster('two replicas on a Redis Cluster of three masters', () => {
  let first: TestApp;
  let second: TestApp;

  beforeAll(async () => {
    first = await startTestApp();
    second = await startTestApp({ shareWith: first });
  });
  afterAll(async () => {
    await second?.close();
    await first?.close();
  });

  it('a key revoked on one replica is refused on the other within 5 s', async () => {
    const { key, id } = await createKey(first);
    const generate = (app: TestApp) =>
      app.http().post('/v1/generate').set('X-API-Key', key).set('Cache-Control', 'no-store').send({ prompt: 'p' });
    expect((await generate(second)).status).toBe(200); // now in the second replica's key cache
    const revokedAt = Date.now();
    expect(
      (
        await first
          .http()
          .delete(`/admin/keys/${id}`)
          .set(...adminAuth())
      ).status,
    ).toBe(204);
    for (;;) {
      const status = (await generate(second)).status;
      if (status === 401) break;
      expect(status).toBe(200);
      expect(Date.now() - revokedAt).toBeLessThan(5000);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  });

  it("the replicas' keys are spread over the masters, and each script's keys share one slot", async () => {
    const { key } = await createKey(first, { max_concurrent: 5 });
    for (let i = 0; i < 30; i += 1) {
      const app = i % 2 === 0 ? first : second;
      expect(
        (
          await app
            .http()
            .post('/v1/generate')
            .set('X-API-Key', key)
            .send({ prompt: `spread ${i}` })
        ).status,
      ).toBe(200);
    }
    const holders: number[] = [];
    for (const node of CLUSTER_NODES.split(',')) {
      const [host, port] = node.split(':');
      const redis = new Redis({ host, port: Number(port), lazyConnect: true });
      await redis.connect();
      const [, found] = await redis.scan('0', 'MATCH', `${first.redisPrefix}*`, 'COUNT', 100_000);
      holders.push(found.length);
      redis.disconnect();
    }
    expect(holders.filter((count) => count > 0).length).toBeGreaterThanOrEqual(2);

    const cluster = new Cluster(
      CLUSTER_NODES.split(',').map((node) => ({ host: node.split(':')[0], port: Number(node.split(':')[1]) })),
    );
    try {
      const window = redisKeys.rateLimitWindow(first.redisPrefix, 'tracker', 42);
      const slot = async (name: string) => Number(await cluster.call('CLUSTER', 'KEYSLOT', name));
      expect(await slot(window.requests)).toBe(await slot(window.tokens));
      const cacheKey = 'a-cache-key';
      expect(await slot(redisKeys.cacheValue(first.redisPrefix, cacheKey))).toBe(
        await slot(redisKeys.cacheLock(first.redisPrefix, cacheKey)),
      );
      // Different entities land on different slots (the tag is the entity, not the prefix).
      expect(await slot(redisKeys.leases(first.redisPrefix, 'a'))).not.toBe(
        await slot(redisKeys.leases(first.redisPrefix, 'b')),
      );
    } finally {
      cluster.disconnect();
    }
  });
});

describeCluster('a cluster master that dies in the middle of traffic', () => {
  it('requests are answered within the Redis bound, never a 500 (degraded mode, as with one Redis)', async () => {
    const own = await startRedisCluster();
    const env = { REDIS_CLUSTER_NODES: own.nodes, READYZ_REQUIRE_REDIS: 'false', REDIS_TIMEOUT_MS: '250' };
    const a = await startTestApp({ env });
    const b = await startTestApp({ env, shareWith: a });
    try {
      const { key } = await createKey(a);
      const seen: { status: number; ms: number }[] = [];
      const round = async (from: number) => {
        for (let i = from; i < from + 40; i += 1) {
          const started = Date.now();
          const res = await (i % 2 ? a : b)
            .http()
            .post('/v1/generate')
            .set('X-API-Key', key)
            .send({ prompt: `cut ${i % 7}` }); // repeats: cache lookups on every node's slots
          seen.push({ status: res.status, ms: Date.now() - started });
        }
      };
      await round(0);
      await own.killNode(1);
      await round(40);
      expect(seen.filter((answer) => answer.status !== 200)).toEqual([]);
      // One request may wait out the bound once per node; none waits on the dead node for long.
      expect(Math.max(...seen.map((answer) => answer.ms))).toBeLessThan(2000);
    } finally {
      await b.close();
      await a.close();
      await own.stop();
    }
  });
});
