/**
 * The replica bus over Redis pub/sub: one channel, messages `<replica id> <topic> <payload>`.
 * Messages of logged topics are also added to a sorted set per topic (scored by Redis' clock,
 * trimmed to LOG_KEEP_MS) by the same script that publishes them.
 *
 * The subscription is (re)made on every connection of the subscriber, so a replica whose first
 * subscribe failed, or whose connection dropped, subscribes again as soon as Redis answers; it is
 * live only while subscribed and while the shared connection is healthy (a hung Redis shows on
 * the shared connection first). Publishes that fail while Redis is down are kept (bounded) and
 * sent when it is back, so other replicas still hear of changes made meanwhile.
 */
import { randomBytes } from 'node:crypto';
import { redisKeys } from '../../infra/redis/redis-keys';
import { type RedisClient, type RedisConnection, subscriberOf } from '../../infra/redis/redis.module';
import { RedisScript } from '../../infra/redis/redis-script';
import { LOG_KEEP_MS, LOGGED_TOPICS, ReplicaBus, type ReplicaTopic } from './replica-bus';

/** KEYS: the topic's log. ARGV: channel, raw message, payload, keep ms. Logs the payload, then publishes. */
const LOGGED_PUBLISH = new RedisScript(`
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
redis.call('ZADD', KEYS[1], now, ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[4]))
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return redis.call('PUBLISH', ARGV[1], ARGV[2])`);

/** KEYS: the topic's log. ARGV: window ms. The payloads logged within the window. */
const READ_LOG = new RedisScript(`
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
return redis.call('ZRANGEBYSCORE', KEYS[1], now - tonumber(ARGV[1]), '+inf')`);

const MAX_PENDING_PUBLISHES = 10_000;
const TOPICS: readonly ReplicaTopic[] = ['key-changed', 'auth-blocked'];

export class RedisReplicaBus extends ReplicaBus {
  private readonly replicaId = randomBytes(6).toString('hex');
  private readonly channel: string;
  private readonly subscriber: RedisClient;
  private subscribed = false;
  private wasLive = false;
  /** When the bus stopped being live (Date.now()), while it is not. */
  private notLiveSince: number | null = null;
  private readonly pending = new Set<string>();
  private readonly unsubscribeHealth: () => void;

  constructor(
    private readonly redis: RedisConnection,
    onSubscribeError: (error: Error) => void,
  ) {
    super();
    this.channel = redisKeys.busChannel(redis.prefix);
    this.subscriber = subscriberOf(redis.client);
    this.subscriber.on('error', () => undefined); // the shared connection logs Redis errors
    this.subscriber.on('ready', () => {
      this.subscriber.subscribe(this.channel).then(
        () => {
          this.subscribed = true;
          this.checkLive();
        },
        (error: Error) => onSubscribeError(error),
      );
    });
    this.subscriber.on('close', () => {
      this.subscribed = false;
      this.checkLive();
    });
    this.subscriber.on('message', (_channel: string, raw: string) => this.received(raw));
    this.unsubscribeHealth = redis.health.subscribe((up) => {
      if (up) this.flushPending();
      this.checkLive();
    });
  }

  get live(): boolean {
    return this.subscribed && this.redis.health.up;
  }

  publish(topic: ReplicaTopic, message: string): void {
    this.deliver(topic, message);
    this.send(`${this.replicaId} ${topic} ${message}`);
  }

  async logged(topic: ReplicaTopic, withinMs: number): Promise<string[]> {
    const window = Math.min(Math.ceil(withinMs), LOG_KEEP_MS);
    return (await this.redis.health.call(() =>
      READ_LOG.run(this.redis.client, [this.logKey(topic)], [window]),
    )) as string[];
  }

  override async close(): Promise<void> {
    this.unsubscribeHealth();
    this.subscriber.disconnect();
    await super.close();
  }

  private send(raw: string): void {
    const [, topic, ...payload] = raw.split(' ');
    const logged = LOGGED_TOPICS.includes(topic as ReplicaTopic);
    void this.redis.health.attempt(
      async () =>
        void (logged
          ? await LOGGED_PUBLISH.run(
              this.redis.client,
              [this.logKey(topic as ReplicaTopic)],
              [this.channel, raw, payload.join(' '), LOG_KEEP_MS],
            )
          : await this.redis.client.publish(this.channel, raw)),
      () => {
        if (this.pending.size < MAX_PENDING_PUBLISHES) this.pending.add(raw);
      },
    );
  }

  private logKey(topic: ReplicaTopic): string {
    return redisKeys.busLog(this.redis.prefix, topic);
  }

  private flushPending(): void {
    const raws = [...this.pending];
    this.pending.clear();
    for (const raw of raws) this.send(raw);
  }

  private received(raw: string): void {
    const [from, topic, ...rest] = raw.split(' ');
    if (from === this.replicaId || !TOPICS.includes(topic as ReplicaTopic)) return;
    this.deliver(topic as ReplicaTopic, rest.join(' '));
  }

  private checkLive(): void {
    const live = this.live;
    if (live && !this.wasLive) {
      // Never live before (startup) counts as a gap of unknown length.
      this.resynced(this.notLiveSince === null ? Infinity : Date.now() - this.notLiveSince);
      this.notLiveSince = null;
    } else if (!live && this.wasLive) {
      this.notLiveSince = Date.now();
    }
    this.wasLive = live;
  }
}
