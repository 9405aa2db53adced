/**
 * KeyInvalidation's catch-up after the replica bus was cut (API.md "Authentication"): the key
 * changes logged during the gap are dropped one by one; a gap longer than the log, or a log that
 * cannot be read, drops everything; the cache is not trusted beyond 5 s until the catch-up ends.
 */
import type { AuthenticatedKey } from '../src/contracts/authenticated-key';
import { KeyCache } from '../src/modules/auth/key-cache';
import { KeyInvalidation } from '../src/modules/auth/key-invalidation';
import { LOG_KEEP_MS, ReplicaBus, type ReplicaTopic } from '../src/stores/replica-bus/replica-bus';

class ScriptedBus extends ReplicaBus {
  live = true;
  windows: number[] = [];
  answer: () => Promise<string[]> = async () => [];

  publish(topic: ReplicaTopic, message: string): void {
    this.deliver(topic, message);
  }

  logged(_topic: ReplicaTopic, withinMs: number): Promise<string[]> {
    this.windows.push(withinMs);
    return this.answer();
  }

  reconnect(gapMs: number): void {
    this.resynced(gapMs);
  }
}

const silent = { warn: () => undefined } as never;
const key = (id: string) => ({ id }) as AuthenticatedKey;

function setUp() {
  const bus = new ScriptedBus();
  const cache = new KeyCache();
  const invalidation = new KeyInvalidation(cache, bus, silent);
  invalidation.onModuleInit();
  for (const id of ['a', 'b', 'c']) cache.set(`hash-${id}`, key(id), 0);
  const cached = () => ['a', 'b', 'c'].filter((id) => cache.get(`hash-${id}`, 1, 60_000));
  return { bus, cache, invalidation, cached };
}

const settled = () => new Promise((resolve) => setImmediate(resolve));

describe('KeyInvalidation catching up after a gap', () => {
  it('drops only the keys logged as changed during the gap (plus a margin), and is current again after', async () => {
    const { bus, invalidation, cached } = setUp();
    let release!: (ids: string[]) => void;
    bus.answer = () => new Promise((resolve) => (release = resolve));
    bus.reconnect(10_000);
    expect(invalidation.current).toBe(false); // reading the log: the 5 s bound applies meanwhile
    release(['b']);
    await settled();
    expect(cached()).toEqual(['a', 'c']);
    expect(invalidation.current).toBe(true);
    expect(bus.windows[0]).toBeGreaterThanOrEqual(10_000);
    expect(bus.windows[0]).toBeLessThan(LOG_KEEP_MS);
  });

  it('a gap longer than the log clears the cache without reading the log', async () => {
    const { bus, invalidation, cached } = setUp();
    bus.reconnect(LOG_KEEP_MS);
    await settled();
    expect(bus.windows).toEqual([]);
    expect(cached()).toEqual([]);
    expect(invalidation.current).toBe(true);
  });

  it('a log that cannot be read clears the cache', async () => {
    const { bus, invalidation, cached } = setUp();
    bus.answer = async () => {
      throw new Error('redis went away again');
    };
    bus.reconnect(1000);
    await settled();
    expect(cached()).toEqual([]);
    expect(invalidation.current).toBe(true);
  });

  it('a catch-up overtaken by a newer gap does not mark the cache current', async () => {
    const { bus, invalidation, cached } = setUp();
    const releases: ((ids: string[]) => void)[] = [];
    bus.answer = () => new Promise((resolve) => releases.push(resolve));
    bus.reconnect(1000);
    bus.reconnect(2000);
    releases[0](['a']);
    await settled();
    expect(invalidation.current).toBe(false);
    expect(cached()).toEqual(['b', 'c']);
    releases[1](['c']);
    await settled();
    expect(cached()).toEqual(['b']); // what the overtaken catch-up read is dropped too
    expect(invalidation.current).toBe(true);
  });

  it('is never current while the bus is not live', () => {
    const { bus, invalidation } = setUp();
    bus.live = false;
    expect(invalidation.current).toBe(false);
  });
});
