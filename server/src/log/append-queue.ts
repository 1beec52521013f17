/**
 * Appends between offset assignment and acknowledgement, in offset order,
 * addressed by absolute sequence numbers so positions held across an
 * `await` (the writer's next write) stay valid while the head is trimmed.
 * Invariant: entries are trimmed only once written, acknowledged and
 * delivered to `onAppend` listeners.
 */
/**
 * Trim once this many leading entries are done (or half the array is): bounds
 * the dead entries kept alive between trims while keeping the copy amortized
 * O(1) per entry. Too small copies often; too large holds more batch bytes.
 */
const MIN_TRIM_ENTRIES = 1024;

export class AppendQueue<T> {
  #items: T[] = [];
  #base = 0;

  /** Absolute index of the first retained entry. */
  get start(): number {
    return this.#base;
  }

  /** Absolute index one past the last entry. */
  get end(): number {
    return this.#base + this.#items.length;
  }

  push(item: T): void {
    this.#items.push(item);
  }

  at(index: number): T {
    const item = this.#items[index - this.#base];
    if (item === undefined) throw new RangeError(`append queue index ${index} outside [${this.#base}, ${this.end})`);
    return item;
  }

  /** Drops entries at and after absolute `index` (truncation: they were cut from the log). */
  truncateFrom(index: number): void {
    if (index < this.end) this.#items.length = Math.max(0, index - this.#base);
  }

  /** Drops entries before absolute `index`; amortized O(1) per entry. */
  trimBefore(index: number): void {
    const n = index - this.#base;
    if (n <= 0) return;
    if (n === this.#items.length) this.#items = [];
    else if (n >= MIN_TRIM_ENTRIES || n * 2 >= this.#items.length) this.#items = this.#items.slice(n);
    else return;
    this.#base = index;
  }
}
