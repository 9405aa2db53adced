/**
 * Limits failed authentications per client address (one-minute windows, AUTH_FAILURE_LIMIT),
 * counted apart per kind of secret (API.md "Authentication"):
 * - client keys: past the limit a key that does not authenticate gets 429 instead of 401, but a
 *   valid key from the same address is still served. Keys are 256-bit random, so the limit only
 *   protects the server, and one client's bad key must never lock out everyone behind the same
 *   address (a NAT, an ingress with TRUST_PROXY_HOPS=0);
 * - admin and metrics tokens: past the limit the address is refused BEFORE any token it sends
 *   is evaluated, the right one included, until the window ends: a guess past the limit learns
 *   nothing. Client-key failures never count toward this limit.
 * IPv6 addresses count per /64 (one host usually owns a whole /64). Only failures are counted,
 * so a client with a valid credential pays nothing. Counts live in the rate-limit counters
 * (shared through Redis when configured); the blocks themselves are kept in memory on every
 * replica (announced over the replica bus), so checking one costs no round trip.
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

/** What kind of secret failed: client keys are counted apart from the admin and metrics tokens. */
export type SecretKind = 'client-key' | 'admin';

@Injectable()
export class AuthFailureLimiter implements OnModuleInit, OnModuleDestroy {
  /** Blocked `<kind> <bucket>`s → epoch ms when the block ends. */
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
      const [kind, bucket, until] = message.split(' ');
      if ((kind === 'client-key' || kind === 'admin') && bucket && Number(until) > 0) {
        this.block(`${kind} ${bucket}`, Number(until));
      }
    });
  }

  onModuleDestroy(): void {
    this.unsubscribe?.();
  }

  /**
   * Throws 429 when `address` is over the limit of admin and metrics token failures; call before
   * comparing such a token (client keys are never refused before they are looked up).
   */
  assertNotBlocked(address: string | undefined): void {
    const leftMs = this.blockedFor('admin', address);
    if (leftMs > 0) throw this.tooMany(leftMs);
  }

  /**
   * Records one failure of a `kind` secret from `address` and returns the error to answer with:
   * the 401 given, or a 429 once the address is over the limit for that kind (and blocked from
   * then on).
   */
  async reject(kind: SecretKind, address: string | undefined, failure: AppError): Promise<AppError> {
    const bucket = clientBucket(address);
    const id = `${kind} ${bucket}`;
    const leftMs = this.blockedFor(kind, address);
    if (leftMs > 0) return this.tooMany(leftMs); // already over: no need to count further
    // Trackers of API keys are their uuids: an "auth-failures:" tracker never collides with one.
    const { count, resetInMs } = await this.counters.hit(`auth-failures:${kind}:${bucket}`, RATE_LIMIT_WINDOW_MS);
    if (count <= this.config.authFailureLimit) return failure;
    const until = this.clock.now().getTime() + resetInMs;
    if (!this.blocked.has(id)) this.bus.publish('auth-blocked', `${id} ${until}`);
    this.block(id, until);
    return this.tooMany(resetInMs);
  }

  /** Milliseconds left of the block of `address` for `kind` secrets (0: not blocked). */
  private blockedFor(kind: SecretKind, address: string | undefined): number {
    if (this.blocked.size === 0) return 0; // every request asks: spare it the address parsing
    const id = `${kind} ${clientBucket(address)}`;
    const until = this.blocked.get(id);
    if (until === undefined) return 0;
    const leftMs = until - this.clock.now().getTime();
    if (leftMs <= 0) this.blocked.delete(id);
    return Math.max(0, leftMs);
  }

  private block(id: string, until: number): void {
    if (this.blocked.size >= MAX_BLOCKED) this.blocked.delete(this.blocked.keys().next().value as string);
    this.blocked.set(id, Math.max(until, this.blocked.get(id) ?? 0));
  }

  private tooMany(resetInMs: number): AppError {
    this.rejections.rateLimited('auth');
    return new AppError('rate_limit_exceeded', 'too many failed authentication attempts; retry later', {
      figures: { retryAfterSeconds: secondsUntil(resetInMs) },
    });
  }
}
