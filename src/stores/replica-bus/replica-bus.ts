/**
 * Messages every replica of the deployment must hear: a key changed (drop it from the key
 * cache), an address is over the failed-authentication limit (refuse it everywhere). A port with
 * two implementations, picked once by StoresModule: LocalReplicaBus (one replica, no Redis) and
 * RedisReplicaBus (pub/sub). Delivery is best effort; what depends on it has a bound of its own
 * (key cache entries live 5 s while the bus is not live). Topics that must not be missed are
 * also kept for LOG_KEEP_MS (`logged()`), so a replica that was cut off reads what it missed.
 */
export type ReplicaTopic = 'key-changed' | 'auth-blocked';

export type ReplicaListener = (message: string) => void;

/** Topics whose messages are kept for LOG_KEEP_MS after they are published. */
export const LOGGED_TOPICS: readonly ReplicaTopic[] = ['key-changed'];
/** How long logged messages are kept: a replica cut off for longer can only start afresh. */
export const LOG_KEEP_MS = 60 * 60_000;

/** Told when the bus is live again after a gap of `gapMs` (messages may have been missed meanwhile). */
export type ResyncListener = (gapMs: number) => void;

export abstract class ReplicaBus {
  private readonly listeners = new Map<ReplicaTopic, Set<ReplicaListener>>();
  private readonly resyncListeners = new Set<ResyncListener>();

  /** Delivers `message` to this replica at once and, when possible, to every other one. Never throws. */
  abstract publish(topic: ReplicaTopic, message: string): void;

  /** True while messages from other replicas are known to arrive promptly. */
  abstract get live(): boolean;

  subscribe(topic: ReplicaTopic, listener: ReplicaListener): () => void {
    let set = this.listeners.get(topic);
    if (!set) this.listeners.set(topic, (set = new Set()));
    set.add(listener);
    return () => set.delete(listener);
  }

  /** Called each time the bus becomes live again: messages may have been missed meanwhile. */
  onResync(listener: ResyncListener): () => void {
    this.resyncListeners.add(listener);
    return () => this.resyncListeners.delete(listener);
  }

  /**
   * The messages of a logged topic published in the last `withinMs` (at most LOG_KEEP_MS; each
   * distinct message once); rejects when they cannot be read now.
   */
  abstract logged(topic: ReplicaTopic, withinMs: number): Promise<string[]>;

  async close(): Promise<void> {
    this.listeners.clear();
  }

  protected deliver(topic: ReplicaTopic, message: string): void {
    for (const listener of this.listeners.get(topic) ?? []) {
      try {
        listener(message);
      } catch {
        // A listener's failure must not stop the others.
      }
    }
  }

  protected resynced(gapMs: number): void {
    for (const listener of this.resyncListeners) listener(gapMs);
  }
}

/** One replica: messages only need to reach this process. */
export class LocalReplicaBus extends ReplicaBus {
  get live(): boolean {
    return false;
  }

  publish(topic: ReplicaTopic, message: string): void {
    this.deliver(topic, message);
  }

  async logged(): Promise<string[]> {
    return []; // nobody else to have missed anything
  }
}
