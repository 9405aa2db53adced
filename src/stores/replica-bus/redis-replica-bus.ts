/**
 * The replica bus over Redis pub/sub: one channel, messages `<replica id> <topic> <payload>`.
 *
 * The subscription is (re)made on every connection of the subscriber, so a replica whose first
 * subscribe failed, or whose connection dropped, subscribes again as soon as Redis answers; it is
 * live only while subscribed and while the shared connection is healthy (a hung Redis shows on
 * the shared connection first). Publishes that fail while Redis is down are kept (bounded) and
 * sent when it is back, so other replicas still hear of changes made meanwhile.
 */
import { randomBytes } from 'node:crypto';
import type Redis from 'ioredis';
import type { RedisConnection } from '../../infra/redis/redis.module';
import { ReplicaBus, type ReplicaTopic } from './replica-bus';

const MAX_PENDING_PUBLISHES = 10_000;
const TOPICS: readonly ReplicaTopic[] = ['key-changed', 'auth-blocked'];

export class RedisReplicaBus extends ReplicaBus {
  private readonly replicaId = randomBytes(6).toString('hex');
  private readonly channel: string;
  private readonly subscriber: Redis;
  private subscribed = false;
  private wasLive = false;
  private readonly pending = new Set<string>();
  private readonly unsubscribeHealth: () => void;

  constructor(
    private readonly redis: RedisConnection,
    onSubscribeError: (error: Error) => void,
  ) {
    super();
    this.channel = `${redis.prefix}replica-bus`;
    this.subscriber = redis.client.duplicate({ autoResubscribe: false });
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

  override async close(): Promise<void> {
    this.unsubscribeHealth();
    this.subscriber.disconnect();
    await super.close();
  }

  private send(raw: string): void {
    void this.redis.health.attempt(
      async () => void (await this.redis.client.publish(this.channel, raw)),
      () => {
        if (this.pending.size < MAX_PENDING_PUBLISHES) this.pending.add(raw);
      },
    );
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
    if (live && !this.wasLive) this.resynced();
    this.wasLive = live;
  }
}
