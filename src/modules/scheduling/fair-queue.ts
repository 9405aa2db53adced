/**
 * The waiting line in front of a model's upstreams: strict priority between classes (`high`
 * before `normal` before `low`), and within a class deficit round robin across keys, so a key
 * with a thousand waiting requests gets its share (its weight's worth per round) and no more,
 * while a key with one waiting request is served within one round.
 *
 * Every request costs one unit: a round gives each waiting key `weight` requests. Removal of a
 * waiter that gave up (client gone, max_wait_ms) is immediate, so it never holds a place. When
 * the queue is full, displaceFor() picks who gives way to an arrival.
 */
import { PRIORITIES, type Priority } from '../../contracts/scheduling';

/** One key's waiting requests within a priority class. */
interface Flow<T> {
  key: string;
  weight: number;
  /** Requests this flow may still take in the current round. */
  deficit: number;
  items: T[];
}

class PriorityClass<T> {
  /** Flows with waiting items, in round-robin order: the head is served next. */
  readonly active: Flow<T>[] = [];
  readonly flows = new Map<string, Flow<T>>();
  size = 0;

  push(key: string, weight: number, item: T): void {
    let flow = this.flows.get(key);
    if (!flow) {
      flow = { key, weight, deficit: 0, items: [] };
      this.flows.set(key, flow);
      this.active.push(flow);
    }
    flow.weight = weight; // an admin change applies from the next round
    flow.items.push(item);
    this.size += 1;
  }

  pop(): T | undefined {
    const flow = this.active[0];
    if (!flow) return undefined;
    if (flow.deficit < 1) flow.deficit += flow.weight; // its turn in a new round
    const item = flow.items.shift()!;
    flow.deficit -= 1;
    this.size -= 1;
    if (flow.items.length === 0) this.drop(flow);
    else if (flow.deficit < 1) this.active.push(this.active.shift()!); // its share of the round is used
    return item;
  }

  remove(key: string, item: T): boolean {
    const flow = this.flows.get(key);
    const at = flow ? flow.items.indexOf(item) : -1;
    if (!flow || at < 0) return false;
    flow.items.splice(at, 1);
    this.size -= 1;
    if (flow.items.length === 0) this.drop(flow);
    return true;
  }

  /** Takes out the newest waiter of `key`. */
  popNewest(key: string): T | undefined {
    const flow = this.flows.get(key);
    if (!flow) return undefined;
    const item = flow.items.pop()!;
    this.size -= 1;
    if (flow.items.length === 0) this.drop(flow);
    return item;
  }

  /** A key with nothing waiting leaves the round and keeps no credit (DRR: idle flows reset). */
  private drop(flow: Flow<T>): void {
    this.flows.delete(flow.key);
    this.active.splice(this.active.indexOf(flow), 1);
  }
}

export class FairQueue<T> {
  private readonly classes: Record<Priority, PriorityClass<T>> = {
    high: new PriorityClass<T>(),
    normal: new PriorityClass<T>(),
    low: new PriorityClass<T>(),
  };

  get size(): number {
    return this.classes.high.size + this.classes.normal.size + this.classes.low.size;
  }

  sizeOf(priority: Priority): number {
    return this.classes[priority].size;
  }

  push(priority: Priority, key: string, weight: number, item: T): void {
    this.classes[priority].push(key, weight, item);
  }

  /** The next request to serve, or undefined when nothing waits. */
  pop(): T | undefined {
    for (const priority of PRIORITIES) {
      const item = this.classes[priority].pop();
      if (item !== undefined) return item;
    }
    return undefined;
  }

  /**
   * Makes room for an arrival of `priority` from key `arriving` in a full queue (API.md
   * "Scheduling"): takes out and returns the newest waiter of the key holding the most places
   * among waiters of the same or lower priority; undefined when that is the arriving key itself
   * (a tie included: a key never pushes out an equal), or nobody of that priority or lower waits.
   * Among keys holding equally many, one in the lowest class gives way first.
   */
  displaceFor(priority: Priority, arriving: string): T | undefined {
    const eligible = PRIORITIES.slice(PRIORITIES.indexOf(priority)).reverse(); // lowest class first
    const places = new Map<string, number>();
    for (const level of eligible) {
      for (const key of this.classes[level].flows.keys()) {
        places.set(key, (places.get(key) ?? 0) + this.classes[level].flows.get(key)!.items.length);
      }
    }
    let most = places.get(arriving) ?? 0;
    let victim: string | null = null;
    for (const [key, held] of places) {
      if (held > most) {
        most = held;
        victim = key;
      }
    }
    if (victim === null) return undefined;
    for (const level of eligible) {
      const item = this.classes[level].popNewest(victim);
      if (item !== undefined) return item;
    }
    return undefined;
  }

  /** Takes a waiter out (it gave up); false when it was no longer waiting. */
  remove(priority: Priority, key: string, item: T): boolean {
    return this.classes[priority].remove(key, item);
  }
}
