/**
 * Messages every replica of the deployment must hear: a key changed (drop it from the key
 * cache), an address is over the failed-authentication limit (refuse it everywhere). A port with
 * two implementations, picked once by StoresModule: LocalReplicaBus (one replica, no Redis) and
 * RedisReplicaBus (pub/sub). Delivery is best effort; what depends on it has a bound of its own
 * (key cache entries live 5 s while the bus is not live).
 */
export type ReplicaTopic = 'key-changed' | 'auth-blocked';

export type ReplicaListener = (message: string) => void;

export abstract class ReplicaBus {
  private readonly listeners = new Map<ReplicaTopic, Set<ReplicaListener>>();
  private readonly resyncListeners = new Set<() => void>();

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
  onResync(listener: () => void): () => void {
    this.resyncListeners.add(listener);
    return () => this.resyncListeners.delete(listener);
  }

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

  protected resynced(): void {
    for (const listener of this.resyncListeners) listener();
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
}
