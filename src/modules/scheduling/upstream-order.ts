/**
 * Spreads traffic over a model's upstreams by weight with smooth weighted round-robin (the
 * nginx algorithm): deterministic, no randomness to inject, and even at small request counts.
 * Each pick returns the chosen upstream first and the others after it by weight, so a
 * request whose upstream is unreachable moves on to the next one.
 */
export class WeightedOrder<T> {
  private readonly current: number[];
  private readonly total: number;

  constructor(
    private readonly items: readonly T[],
    private readonly weights: readonly number[],
  ) {
    this.current = weights.map(() => 0);
    this.total = weights.reduce((sum, weight) => sum + weight, 0);
  }

  next(): T[] {
    if (this.items.length <= 1) return [...this.items];
    let best = 0;
    for (let i = 0; i < this.items.length; i += 1) {
      this.current[i] += this.weights[i];
      if (this.current[i] > this.current[best]) best = i;
    }
    this.current[best] -= this.total;
    const rest = this.items
      .map((item, i) => ({ item, weight: this.weights[i], i }))
      .filter((entry) => entry.i !== best)
      .sort((a, b) => b.weight - a.weight || a.i - b.i)
      .map((entry) => entry.item);
    return [this.items[best], ...rest];
  }
}
