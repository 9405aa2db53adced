/**
 * Limits failed authentications per client address (one-minute windows), so keys and the
 * admin and metrics tokens cannot be guessed at speed. Only failures are counted, so a client
 * with a valid key pays nothing. IPv6 addresses count per /64 (one host usually owns a whole
 * /64). Once an address is over the limit it is refused BEFORE any credential it sends is
 * evaluated, until the window ends: a guess past the limit learns nothing, not even whether it
 * was right. Counts live in the rate-limit counters (shared through Redis when configured); the
 * block itself is kept in memory on every replica (announced over the replica bus), so checking
 * it costs no round trip.
 */
import { Inject, Injectable, type OnModuleDestroy, type OnModuleInit } from '@nestjs/common';
import { isIPv4 } from 'node:net';
import { AppError } from '../../contracts/app-error';
import { Clock } from '../../contracts/clock';
import type { AppConfig } from '../../infra/config/app.config';
import { APP_CONFIG } from '../../infra/config/config.module';
import { LimitRejections } from '../limits/limit-rejections';
import { RateLimitCounters } from '../../stores/rate-limit/rate-limit-counters';
import { RATE_LIMIT_WINDOW_MS, secondsUntil } from '../../stores/rate-limit/rate-limit-window';
import { ReplicaBus } from '../../stores/replica-bus/replica-bus';

const MAX_BLOCKED = 100_000;

/** The unit failures are counted for: the IPv4 address, or the /64 of an IPv6 one. */
export function clientBucket(address: string | undefined): string {
  if (!address) return 'unknown';
  const v4 = address.startsWith('::ffff:') ? address.slice(7) : address;
  if (isIPv4(v4)) return v4;
  const zoneless = address.split('%')[0].toLowerCase();
  const [head, tail = ''] = zoneless.split('::');
  const headGroups = head === '' ? [] : head.split(':');
  const tailGroups = tail === '' ? [] : tail.split(':');
  const zeros = Array(Math.max(0, 8 - headGroups.length - tailGroups.length)).fill('0');
  const groups = zoneless.includes('::') ? [...headGroups, ...zeros, ...tailGroups] : headGroups;
  return `${groups
    .slice(0, 4)
    .map((group) => group.replace(/^0+(?=.)/, ''))
    .join(':')}::/64`;
}

@Injectable()
export class AuthFailureLimiter implements OnModuleInit, OnModuleDestroy {
  /** Blocked buckets → epoch ms when the block ends. */
  private readonly blocked = new Map<string, number>();
  private unsubscribe: (() => void) | null = null;

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly counters: RateLimitCounters,
    private readonly rejections: LimitRejections,
    private readonly bus: ReplicaBus,
    private readonly clock: Clock,
  ) {}

  onModuleInit(): void {
    this.unsubscribe = this.bus.subscribe('auth-blocked', (message) => {
      const [bucket, until] = message.split(' ');
      if (bucket && Number(until) > 0) this.block(bucket, Number(until));
    });
  }

  onModuleDestroy(): void {
    this.unsubscribe?.();
  }

  /** Throws 429 when `address` is over the failed-authentication limit; call before checking a credential. */
  assertNotBlocked(address: string | undefined): void {
    if (this.blocked.size === 0) return; // every request asks: spare it the address parsing
    const bucket = clientBucket(address);
    const until = this.blocked.get(bucket);
    if (until === undefined) return;
    const nowMs = this.clock.now().getTime();
    if (until <= nowMs) {
      this.blocked.delete(bucket);
      return;
    }
    throw this.tooMany(until - nowMs);
  }

  /**
   * Records one failure for `address` and returns the error to answer with: the 401 given,
   * or a 429 once the address is over the limit (and blocked from then on).
   */
  async reject(address: string | undefined, failure: AppError): Promise<AppError> {
    const bucket = clientBucket(address);
    // Trackers of API keys are their uuids: an "auth-failures:" tracker never collides with one.
    const { count, resetInMs } = await this.counters.hit(`auth-failures:${bucket}`, RATE_LIMIT_WINDOW_MS);
    if (count <= this.config.authFailureLimit) return failure;
    const until = this.clock.now().getTime() + resetInMs;
    if (!this.blocked.has(bucket)) this.bus.publish('auth-blocked', `${bucket} ${until}`);
    this.block(bucket, until);
    return this.tooMany(resetInMs);
  }

  private block(bucket: string, until: number): void {
    if (this.blocked.size >= MAX_BLOCKED) this.blocked.delete(this.blocked.keys().next().value as string);
    this.blocked.set(bucket, Math.max(until, this.blocked.get(bucket) ?? 0));
  }

  private tooMany(resetInMs: number): AppError {
    this.rejections.rateLimited('auth');
    return new AppError('rate_limit_exceeded', 'too many failed authentication attempts; retry later', {
      figures: { retryAfterSeconds: secondsUntil(resetInMs) },
    });
  }
}
