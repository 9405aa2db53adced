/**
 * The one policy for "Redis is down" (API.md "Health"): a store's Redis adapter answers while
 * Redis is up; while it is down, or when a call finds it down (an outage, a timeout), the same
 * call is answered by the store's in-process stand-in instead, at once. Nothing on the request
 * path waits on a Redis that does not answer, and nothing fails because of it: the limit then
 * holds per replica, the cache is skipped, until the health monitor sees Redis answer again.
 *
 * The wrapper inherits everything else from the Redis adapter (its prototype), so a port's own
 * methods that call a wrapped one (ThrottlerStorage.increment calling hit) go through the
 * fallback too. Redis adapters themselves just talk to Redis and let errors propagate.
 */
import type { RedisConnection } from './redis.module';

type AsyncMethod = (...args: never[]) => Promise<unknown>;
type AsyncMethodsOf<T> = { [K in keyof T]: T[K] extends AsyncMethod ? K : never }[keyof T];

export function withRedisFallback<T extends object>(
  redis: RedisConnection,
  primary: T,
  fallback: T,
  methods: readonly AsyncMethodsOf<T>[],
): T {
  const wrapper = Object.create(primary) as T;
  for (const name of methods) {
    const viaRedis = primary[name] as AsyncMethod;
    const stand = fallback[name] as AsyncMethod;
    Object.defineProperty(wrapper, name, {
      value: (...args: never[]) =>
        redis.health.attempt(
          () => viaRedis.apply(wrapper, args),
          () => stand.apply(fallback, args),
        ),
    });
  }
  return wrapper;
}
