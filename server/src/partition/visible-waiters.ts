/**
 * Long-poll and SSE waits of one partition: each waits for the high
 * watermark to pass its offset. Shared by every `Partition` implementation.
 *
 * Invariant: a waiter resolves exactly once (data visible, timeout, abort or
 * close) and leaves the set in the same step, so a finished long poll holds
 * no timer, listener or entry.
 */
interface Waiter {
  offset: number;
  done(): void;
}

export class VisibleWaiters {
  private readonly waiters = new Set<Waiter>();
  private closed = false;

  /** `highWatermark()` is read at each check (a live view of the partition). */
  constructor(private readonly highWatermark: () => number) {}

  get size(): number {
    return this.waiters.size;
  }

  wait(offset: number, timeoutMs: number, signal?: AbortSignal): Promise<void> {
    if (this.closed || this.highWatermark() > offset || signal?.aborted || timeoutMs <= 0) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const waiter: Waiter = {
        offset,
        done: () => {
          clearTimeout(timer);
          this.waiters.delete(waiter);
          signal?.removeEventListener('abort', waiter.done);
          resolve();
        },
      };
      const timer = setTimeout(waiter.done, timeoutMs);
      this.waiters.add(waiter);
      signal?.addEventListener('abort', waiter.done, { once: true });
    });
  }

  /** The high watermark moved: wakes the waiters it passed. */
  notify(): void {
    if (this.waiters.size === 0) return;
    const hw = this.highWatermark();
    for (const w of [...this.waiters]) if (hw > w.offset) w.done();
  }

  /** Partition closing (topic deleted, shutdown): every wait ends now. */
  close(): void {
    this.closed = true;
    for (const w of [...this.waiters]) w.done();
  }
}
