/**
 * Indexed binary min-heap: items keyed by a number, with O(log n) insert,
 * remove and re-key of any item (the heap remembers each item's slot).
 *
 * Used by the live channel to find, in O(1), the subscriber whose credit or
 * backpressure room runs out first, so a publish costs O(log n) per
 * subscriber that actually runs out instead of O(subscribers).
 * Invariant: key(parent) <= key(child); `slot.get(item)` is the item's index.
 */
import { assert } from '@runnel/client/codec';

export class MinHeap<T> {
  private readonly items: T[] = [];
  private readonly keys: number[] = [];
  private readonly slot = new Map<T, number>();

  get size(): number {
    return this.items.length;
  }

  has(item: T): boolean {
    return this.slot.has(item);
  }

  /** Smallest key, or +Infinity when empty. */
  peekKey(): number {
    return this.items.length === 0 ? Number.POSITIVE_INFINITY : this.keys[0];
  }

  peek(): T | undefined {
    return this.items[0];
  }

  keyOf(item: T): number | undefined {
    const i = this.slot.get(item);
    return i === undefined ? undefined : this.keys[i];
  }

  /** Inserts `item` or re-keys it when already present. */
  set(item: T, key: number): void {
    assert(!Number.isNaN(key), 'heap key must not be NaN');
    const i = this.slot.get(item);
    if (i === undefined) {
      this.items.push(item);
      this.keys.push(key);
      this.slot.set(item, this.items.length - 1);
      this.up(this.items.length - 1);
      return;
    }
    const old = this.keys[i];
    this.keys[i] = key;
    if (key < old) this.up(i);
    else this.down(i);
  }

  pop(): T | undefined {
    if (this.items.length === 0) return undefined;
    const top = this.items[0];
    this.removeAt(0);
    return top;
  }

  delete(item: T): boolean {
    const i = this.slot.get(item);
    if (i === undefined) return false;
    this.removeAt(i);
    return true;
  }

  clear(): void {
    this.items.length = 0;
    this.keys.length = 0;
    this.slot.clear();
  }

  private removeAt(i: number): void {
    const last = this.items.length - 1;
    this.slot.delete(this.items[i]);
    if (i !== last) {
      this.items[i] = this.items[last];
      this.keys[i] = this.keys[last];
      this.slot.set(this.items[i], i);
    }
    this.items.pop();
    this.keys.pop();
    if (i < this.items.length) {
      this.up(i);
      this.down(i);
    }
  }

  private up(i: number): void {
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (this.keys[parent] <= this.keys[i]) return;
      this.swap(i, parent);
      i = parent;
    }
  }

  private down(i: number): void {
    const n = this.items.length;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < n && this.keys[l] < this.keys[m]) m = l;
      if (r < n && this.keys[r] < this.keys[m]) m = r;
      if (m === i) return;
      this.swap(i, m);
      i = m;
    }
  }

  private swap(a: number, b: number): void {
    const item = this.items[a];
    const key = this.keys[a];
    this.items[a] = this.items[b];
    this.keys[a] = this.keys[b];
    this.items[b] = item;
    this.keys[b] = key;
    this.slot.set(this.items[a], a);
    this.slot.set(this.items[b], b);
  }
}
