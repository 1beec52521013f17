/**
 * Offset tracker (sans-IO): per partition, the next offset a local consumer
 * must hand to its handler and the next offset it must store.
 *
 * Invariant: for each partition, offsets reach the handler strictly
 * increasing and each at most once, whatever the broker redelivers (the
 * first batch of a RecordsFrame may start before the subscribed offset, a
 * re-subscribe or reconnect replays from a lower position). The stored
 * offset never passes an offset whose handler has not finished.
 */

export class OffsetTracker {
  /** Next offset to hand to the handler, per partition. */
  readonly #positions = new Map<number, number>();
  /** Next offset to store (handler finished below it), per partition. */
  readonly #handled = new Map<number, number>();
  /** Partitions whose handled offset changed since the last `takeCommit()`. */
  readonly #dirty = new Set<number>();

  /** Where `partition` resumes, or undefined when it has no position yet. */
  position(partition: number): number | undefined {
    return this.#positions.get(partition);
  }

  /** Sets the position (start, reset after "not recovered"). Does not mark a commit. */
  seek(partition: number, offset: number): void {
    this.#positions.set(partition, offset);
    this.#handled.set(partition, offset);
  }

  /**
   * Whether `offset` must go to the handler: true exactly once per offset at
   * or above the position, which then moves past it. NB: a gap (offset above
   * the position) is accepted, as Kafka consumers accept compacted logs.
   */
  accept(partition: number, offset: number): boolean {
    const next = this.#positions.get(partition);
    if (next === undefined || offset < next) return false;
    this.#positions.set(partition, offset + 1);
    return true;
  }

  /**
   * A frame's records below `next` were accepted (a batch walk that admits
   * offsets at or above the position, strictly increasing, then moves it here
   * once instead of per record): the position moves up to `next`, never back.
   */
  advance(partition: number, next: number): void {
    const position = this.#positions.get(partition);
    if (position !== undefined && next > position) this.#positions.set(partition, next);
  }

  /** Whether every offset below `lastOffset + 1` of `partition` was already accepted. */
  isBehind(partition: number, lastOffset: number): boolean {
    const next = this.#positions.get(partition);
    return next === undefined || lastOffset < next;
  }

  /** The handler finished `offset`: the next offset to store becomes `offset + 1`. */
  markHandled(partition: number, offset: number): void {
    this.#handled.set(partition, offset + 1);
    this.#dirty.add(partition);
  }

  /** Next offset to store for `partition` (undefined before any seek). */
  handledOffset(partition: number): number | undefined {
    return this.#handled.get(partition);
  }

  /**
   * Offsets to store now (partition → next offset), or null when nothing
   * changed. Ordering: persist the result before reporting it committed; a
   * later call returns newer offsets only.
   */
  takeCommit(): Map<number, number> | null {
    if (this.#dirty.size === 0) return null;
    const out = new Map<number, number>();
    for (const partition of this.#dirty) out.set(partition, this.#handled.get(partition)!);
    this.#dirty.clear();
    return out;
  }
}
