/**
 * Prefix affinity: requests that start alike (a shared system prompt, the same few-shot
 * examples) go to the same upstream, where the engine's prefix cache already holds their KV
 * blocks. The prefix is the first AFFINITY_PREFIX_CHARS of the prompt or, for chat, of the
 * messages before the last user turn (the part conversations share); it is placed on a
 * consistent-hash ring of the upstreams (virtual nodes by weight), so adding or losing an
 * upstream moves only its share of prefixes.
 *
 * Bounded load (Mirrokni, Thorup, Zadimoghaddam, "Consistent Hashing with Bounded Loads"): an
 * upstream already holding LOAD_FACTOR × the average passes the request on to the next upstream
 * on the ring, so one hot prefix cannot pile onto one GPU while the others idle. The bound is
 * loose on purpose (and never below MIN_LOAD_BOUND): moving costs the request a cold prefill,
 * while a few more sequences in a GPU's batch cost little, so only a clear imbalance (or a
 * saturated upstream: max_in_flight, an engine backlog) moves a prefix.
 */
import { chatMessagesOf, type GenerationParams } from '../domain/generation';
import type { UpstreamSlot } from './upstream-slot';

export const AFFINITY_PREFIX_CHARS = 256;
const VIRTUAL_NODES_PER_WEIGHT = 64;
const LOAD_FACTOR = 1.5;
const MIN_LOAD_BOUND = 4;

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

  /** Every upstream once, in ring order from the prefix's point: the first is its home. */
  walk(prefix: string): UpstreamSlot[] {
    const hash = fnv1a(prefix);
    let low = 0;
    let high = this.points.length;
    while (low < high) {
      const mid = (low + high) >>> 1;
      if (this.points[mid] < hash) low = mid + 1;
      else high = mid;
    }
    const seen = new Set<number>();
    const order: UpstreamSlot[] = [];
    for (let i = 0; i < this.points.length && order.length < this.slots.length; i += 1) {
      const owner = this.owners[(low + i) % this.points.length];
      if (seen.has(owner)) continue;
      seen.add(owner);
      order.push(this.slots[owner]);
    }
    return order;
  }
}

/**
 * The ring order, with upstreams that cannot take the request well moved behind the others (in
 * ring order still): saturated (max_in_flight reached or an engine backlog) or over the bounded
 * load. A prefix so stays home until home is full, then spills to its next neighbour.
 */
export function affinityOrder(ring: HashRing, slots: readonly UpstreamSlot[], prefix: string): UpstreamSlot[] {
  let total = 0;
  for (const slot of slots) total += slot.outstanding;
  const bound = Math.max(MIN_LOAD_BOUND, Math.ceil((LOAD_FACTOR * (total + 1)) / slots.length));
  const good: UpstreamSlot[] = [];
  const spill: UpstreamSlot[] = [];
  for (const slot of ring.walk(prefix)) {
    const fits = slot.usable && slot.hasRoom && !slot.backlogged && slot.outstanding < bound;
    (fits ? good : spill).push(slot);
  }
  return good.length === slots.length ? good : good.concat(spill);
}
