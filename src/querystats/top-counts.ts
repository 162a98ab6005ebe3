/**
 * Space-saving (Metwally, Agrawal, El Abbadi 2005) over a fixed number of slots: the keys with the
 * largest weights are kept, and when a new key arrives with every slot taken, the lightest key is
 * evicted and the newcomer inherits its weight as an over-estimate (`error`).
 *
 * Guarantee with k slots over a stream of total weight W: every key whose true weight exceeds W/k is
 * held, and a held key's weight is over-estimated by at most its `error` (itself at most W/k). A key
 * admitted while slots were free has error 0: its figures are exact.
 *
 * The lightest key is found by a scan when evicting, not kept in a heap: updates (every query) stay
 * O(1) and evictions (a new shape with the table full) cost O(k).
 */
export interface Slot<V> {
  readonly key: string;
  /** Space-saving weight: inherited error plus what was added since admission. */
  weight: number;
  /** Weight inherited from the evicted key: the bound on this key's over-estimate. */
  readonly error: number;
  readonly value: V;
}

export class SpaceSaving<V> {
  readonly capacity: number;
  readonly #slots = new Map<string, Slot<V>>();
  readonly #onEvict: (slot: Slot<V>) => void;

  constructor(capacity: number, onEvict: (slot: Slot<V>) => void = () => {}) {
    this.capacity = Math.max(1, Math.floor(capacity));
    this.#onEvict = onEvict;
  }

  get(key: string): Slot<V> | undefined {
    return this.#slots.get(key);
  }

  /** Admits an absent `key` (evicting the lightest when full); add its weight to the returned slot. */
  admit(key: string, value: V): Slot<V> {
    let error = 0;
    if (this.#slots.size >= this.capacity) {
      const lightest = this.#lightest();
      this.#slots.delete(lightest.key);
      this.#onEvict(lightest);
      error = lightest.weight;
    }
    const created: Slot<V> = { key, weight: error, error, value };
    this.#slots.set(key, created);
    return created;
  }

  values(): IterableIterator<Slot<V>> {
    return this.#slots.values();
  }

  get size(): number {
    return this.#slots.size;
  }

  clear(): void {
    this.#slots.clear();
  }

  #lightest(): Slot<V> {
    let lightest: Slot<V> | undefined;
    for (const slot of this.#slots.values()) {
      // Ties go to the key admitted first (Map order): the newest arrivals get a chance to grow.
      if (lightest === undefined || slot.weight < lightest.weight) lightest = slot;
    }
    return lightest!;
  }
}

/** Label-like counts bounded to `capacity` keys; evicted counts go to "other", so the sum stays exact. */
export class TopCounts {
  static readonly OTHER = 'other';
  readonly #sketch: SpaceSaving<{ count: number }>;
  #other = 0;

  constructor(capacity: number) {
    this.#sketch = new SpaceSaving(capacity, (slot) => {
      this.#other += slot.value.count;
    });
  }

  add(key: string, count = 1): void {
    const slot = this.#sketch.get(key) ?? this.#sketch.admit(key, { count: 0 });
    slot.weight += count;
    slot.value.count += count;
  }

  /** Exact counts since each key's admission, heaviest first, with "other" last when non-zero. */
  entries(): Array<[string, number]> {
    let other = this.#other;
    const entries: Array<[string, number]> = [];
    for (const slot of this.#sketch.values()) {
      // A key that is literally "other" joins the folded remainder rather than shadowing it.
      if (slot.key === TopCounts.OTHER) other += slot.value.count;
      else entries.push([slot.key, slot.value.count]);
    }
    entries.sort((a, b) => b[1] - a[1]);
    if (other > 0) entries.push([TopCounts.OTHER, other]);
    return entries;
  }

  toObject(): Record<string, number> {
    return Object.fromEntries(this.entries());
  }
}
