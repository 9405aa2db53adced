/**
 * Prefix affinity: requests that start alike (a shared system prompt, the same few-shot
 * examples) go to the same upstream, where the engine's prefix cache already holds their KV
 * blocks. The prefix is the first AFFINITY_PREFIX_CHARS of the prompt or, for chat, of the
 * messages before the last user turn (the part conversations share); it is placed on a
 * consistent-hash ring of the upstreams (virtual nodes by weight), so adding or losing an
 * upstream moves only its share of prefixes.
 *
 * Bounded loads (Mirrokni, Thorup, Zadimoghaddam, "Consistent Hashing with Bounded Loads"),
 * twice:
 * - on the prefixes (PrefixPlacement): a prefix seen for the first time goes to the first
 *   upstream in its ring order that holds fewer than PREFIX_LOAD_FACTOR × its weighted share of
 *   the prefixes in use, and stays there while it keeps coming. A plain ring splits a few dozen
 *   prefixes unevenly (16 over two upstreams: 11/5 about one time in five), and the upstream with
 *   the larger share evicts its own prefixes from a cache that would hold an even share; bounded,
 *   each upstream's working set stays near its share.
 * - on the requests: an upstream already holding LOAD_FACTOR × the average of requests in flight
 *   passes the request on to the next upstream on the ring, so one hot prefix cannot pile onto
 *   one GPU while the others idle. This bound is loose on purpose (and never below
 *   MIN_LOAD_BOUND): moving costs the request a cold prefill, while a few more sequences in a
 *   GPU's batch cost little, so only a clear imbalance (or a saturated upstream: max_in_flight,
 *   an engine backlog) moves a request, and the prefix keeps its home.
 * Placement is per replica: replicas that see the same prefixes mostly agree (each starts from
 * the same ring), but one that places a prefix when the shares differ may send it elsewhere.
 */
import { chatMessagesOf, type GenerationParams } from '../../contracts/generation';
import type { UpstreamSlot } from './upstream-slot';

export const AFFINITY_PREFIX_CHARS = 256;
const VIRTUAL_NODES_PER_WEIGHT = 64;
const LOAD_FACTOR = 1.5;
const MIN_LOAD_BOUND = 4;
const PREFIX_LOAD_FACTOR = 1.25;
/** A prefix not seen for this long no longer counts as in use (engines' caches have moved on too). */
export const PREFIX_IDLE_MS = 60_000;
/** Prefixes followed at most (the least recently seen are forgotten first). */
const MAX_PLACED_PREFIXES = 10_000;

/** FNV-1a, 32 bits: cheap and well spread for short strings; not a security boundary. */
export function fnv1a(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i += 1) hash = Math.imul(hash ^ text.charCodeAt(i), 0x01000193);
  return hash >>> 0;
}

/** The part of a request that requests sharing a prefix cache entry have in common. */
export function affinityText(params: GenerationParams): string {
  const messages = chatMessagesOf(params);
  if (!messages) return params.prompt.slice(0, AFFINITY_PREFIX_CHARS);
  let lastUser = messages.length - 1;
  while (lastUser > 0 && messages[lastUser].role !== 'user') lastUser -= 1;
  // A conversation that is only its question has no shared part: its own start is the prefix.
  const shared = lastUser > 0 ? messages.slice(0, lastUser) : messages.slice(0, 1);
  let text = '';
  for (const message of shared) {
    text += `${message.role}\u0000${message.content}\u0000`;
    if (text.length >= AFFINITY_PREFIX_CHARS) break;
  }
  return text.slice(0, AFFINITY_PREFIX_CHARS);
}

export class HashRing {
  private readonly points: Uint32Array;
  private readonly owners: Uint16Array;

  constructor(private readonly slots: readonly UpstreamSlot[]) {
    const nodes: { point: number; owner: number }[] = [];
    slots.forEach((slot, owner) => {
      for (let i = 0; i < slot.weight * VIRTUAL_NODES_PER_WEIGHT; i += 1) {
        nodes.push({ point: fnv1a(`${slot.label}#${i}`), owner });
      }
    });
    nodes.sort((a, b) => a.point - b.point);
    this.points = Uint32Array.from(nodes, (node) => node.point);
    this.owners = Uint16Array.from(nodes, (node) => node.owner);
  }

  /** Every upstream once, in ring order from the prefix's point: the first is its home on the ring. */
  walk(prefix: string): UpstreamSlot[] {
    return this.walkFrom(fnv1a(prefix)).map((owner) => this.slots[owner]);
  }

  /** The upstreams' indexes, each once, in ring order from the point `hash`. */
  walkFrom(hash: number): number[] {
    let low = 0;
    let high = this.points.length;
    while (low < high) {
      const mid = (low + high) >>> 1;
      if (this.points[mid] < hash) low = mid + 1;
      else high = mid;
    }
    const order: number[] = [];
    for (let i = 0; i < this.points.length && order.length < this.slots.length; i += 1) {
      const owner = this.owners[(low + i) % this.points.length];
      if (!order.includes(owner)) order.push(owner);
    }
    return order;
  }
}

interface Placed {
  owner: number;
  seenAt: number;
}

/** Where each prefix in use lives: its home upstream, chosen once by the ring and the bounded share. */
export class PrefixPlacement {
  private readonly ring: HashRing;
  /** By prefix hash, least recently seen first (a Map keeps insertion order; a touch re-inserts). */
  private readonly placed = new Map<number, Placed>();
  /** Prefixes placed on each upstream. */
  private readonly held: number[];
  private readonly totalWeight: number;

  constructor(
    private readonly slots: readonly UpstreamSlot[],
    private readonly now: () => number = Date.now,
  ) {
    this.ring = new HashRing(slots);
    this.held = slots.map(() => 0);
    this.totalWeight = slots.reduce((sum, slot) => sum + slot.weight, 0);
  }

  /** Every upstream once, the prefix's home first, then the others in its ring order. */
  order(prefix: string): UpstreamSlot[] {
    const hash = fnv1a(prefix);
    const walk = this.ring.walkFrom(hash);
    const home = this.home(hash, walk);
    const order = [this.slots[home]];
    for (const owner of walk) if (owner !== home) order.push(this.slots[owner]);
    return order;
  }

  /** Prefixes in use on each upstream (for tests and reasoning; the request path does not need it). */
  get prefixesHeld(): readonly number[] {
    return this.held;
  }

  private home(hash: number, walk: readonly number[]): number {
    const now = this.now();
    this.forgetIdle(now);
    const known = this.placed.get(hash);
    if (known) {
      this.placed.delete(hash);
      known.seenAt = now;
      this.placed.set(hash, known);
      return known.owner;
    }
    const inUse = this.placed.size + 1;
    let owner = walk.find(
      (candidate) =>
        this.slots[candidate].usable &&
        this.held[candidate] <
          Math.max(1, Math.ceil((PREFIX_LOAD_FACTOR * inUse * this.slots[candidate].weight) / this.totalWeight)),
    );
    owner ??= walk[0];
    this.placed.set(hash, { owner, seenAt: now });
    this.held[owner] += 1;
    return owner;
  }

  private forgetIdle(now: number): void {
    for (const [hash, entry] of this.placed) {
      if (now - entry.seenAt < PREFIX_IDLE_MS && this.placed.size <= MAX_PLACED_PREFIXES) return;
      this.placed.delete(hash);
      this.held[entry.owner] -= 1;
    }
  }
}

/**
 * The prefix's order (home first), with upstreams that cannot take the request well moved behind
 * the others (in that order still): saturated (max_in_flight reached or an engine backlog) or over
 * the bounded load. A prefix so stays home until home is full, then spills to its next neighbour.
 */
export function affinityOrder(
  placement: PrefixPlacement,
  slots: readonly UpstreamSlot[],
  prefix: string,
): UpstreamSlot[] {
  let total = 0;
  for (const slot of slots) total += slot.outstanding;
  const bound = Math.max(MIN_LOAD_BOUND, Math.ceil((LOAD_FACTOR * (total + 1)) / slots.length));
  const good: UpstreamSlot[] = [];
  const spill: UpstreamSlot[] = [];
  for (const slot of placement.order(prefix)) {
    const fits = slot.usable && slot.hasRoom && !slot.backlogged && slot.outstanding < bound;
    (fits ? good : spill).push(slot);
  }
  return good.length === slots.length ? good : good.concat(spill);
}
