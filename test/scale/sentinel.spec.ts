/**
 * Redis Sentinel (issue 28): two replicas reach Redis through three Sentinels watching a master
 * and its replica. The test kills the master's process in the middle of traffic: while the
 * Sentinels fail over, requests see the degraded mode of API.md (answered at once, never a 500),
 * and once the promoted replica answers, the limits are shared again (an RPM exact across both).
 */
import type { Response } from 'supertest';
import { startTestApp, type TestApp } from '../harness/app';
import { describeServices } from '../harness/environment';
import { createKey } from '../harness/keys';
import { hasRedisCli, type SentinelGroup, startSentinelGroup, waitFor } from '../harness/scale-services';
import { REDIS_CONNECTION, type RedisConnection } from '../../src/infra/redis/redis.module';

const describeSentinel = hasRedisCli ? describeServices : describe.skip;

describeSentinel('a Sentinel failover in the middle of traffic', () => {
  let group: SentinelGroup;
  let first: TestApp;
  let second: TestApp;

  beforeAll(async () => {
    group = await startSentinelGroup();
    const env = { REDIS_SENTINELS: group.sentinels, REDIS_SENTINEL_NAME: group.name, READYZ_REQUIRE_REDIS: 'false' };
    first = await startTestApp({ env });
    second = await startTestApp({ env, shareWith: first });
  });
  afterAll(async () => {
    await second?.close();
    await first?.close();
    await group?.stop();
  });

  const generate = (app: TestApp, key: string, prompt: string): Promise<Response> =>
    app.http().post('/v1/generate').set('X-API-Key', key).set('Cache-Control', 'no-store').send({ prompt });
  const redisUp = (app: TestApp) => app.app!.get<RedisConnection>(REDIS_CONNECTION).health.up;

  /** 2 × limit requests alternating between the replicas in a fresh minute: how many got 200. */
  async function acceptedInFreshWindow(key: string, limit: number): Promise<number> {
    first.clock.advance(60_000);
    const statuses = await Promise.all(
      Array.from({ length: 2 * limit }, (_, i) => generate(i % 2 ? first : second, key, `w${i}`)),
    );
    return statuses.filter((res) => res.status === 200).length;
  }

  it('no 500 and no long wait during the failover; RPM shared again once the new master answers', async () => {
    const limited = await createKey(first, { rpm_limit: 10 });
    const free = await createKey(first, { rpm_limit: 1_000_000 });
    expect(await acceptedInFreshWindow(limited.key, 10)).toBe(10);

    const oldMaster = await group.masterPort();
    const seen: { status: number; ms: number }[] = [];
    let stop = false;
    const traffic = (async () => {
      for (let i = 0; !stop; i += 1) {
        const started = Date.now();
        const res = await generate(i % 2 ? first : second, free.key, `t${i}`);
        seen.push({ status: res.status, ms: Date.now() - started });
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    })();
    await waitFor('traffic flows', async () => seen.length > 5);
    await group.killMaster();
    await waitFor('the Sentinels promote the replica', async () => (await group.masterPort()) !== oldMaster, 30_000);
    await waitFor('both replicas use Redis again', async () => redisUp(first) && redisUp(second), 30_000);
    const afterFailover = seen.length;
    await waitFor('traffic after the failover', async () => seen.length > afterFailover + 5);
    stop = true;
    await traffic;

    expect(seen.filter((answer) => answer.status !== 200)).toEqual([]);
    // REDIS_TIMEOUT_MS is 250: no request waited on the dead master for long.
    expect(Math.max(...seen.map((answer) => answer.ms))).toBeLessThan(1500);
    expect(await acceptedInFreshWindow(limited.key, 10)).toBe(10);
  }, 90_000);
});
