/**
 * Whether a log file's write or fdatasync runs on the event loop (one
 * synchronous call) or on libuv's thread pool. A thread-pool call costs two
 * thread hand-offs (a futex wake of a worker, an eventfd wake of the loop),
 * and on a loaded machine each hand-off may wait for a core: a 40 µs
 * fdatasync then answers in milliseconds. Inline, the call blocks the loop for
 * its own duration and nothing more.
 *
 * Calls stay inline while the moving mean of their durations is at most
 * `maxMs`. Above it (a slow or busy disk must not stall every other client of
 * the broker) they go to the thread pool, and one call every
 * `probeIntervalMs` runs inline to see whether the disk is fast again; a
 * probe within `maxMs` brings the calls back inline. `maxMs` 0: never
 * inline. Pure (the clock is passed in); one governor per kind of call.
 */
import { assert } from '@runnel/client/codec';

/**
 * Weight of the newest duration in the moving mean: one outlier among fast calls does not leave inline mode
 * (a 5 ms call after 40 µs ones: mean 0.14 ms), a disk that turned slow does within ~12 calls (1 ms each, maxMs 0.25).
 */
const MEAN_WEIGHT = 0.02;

export class InlineIoGovernor {
  readonly maxMs: number;
  readonly probeIntervalMs: number;
  #meanMs = -1;
  #isInline: boolean;
  #nextProbeMs = 0;
  /** Calls run inline and on the thread pool so far (metrics). */
  inlineCalls = 0;
  pooledCalls = 0;

  constructor(maxMs: number, probeIntervalMs = 1000) {
    assert(maxMs >= 0 && probeIntervalMs > 0, `inline I/O: maxMs (${maxMs}) >= 0 and probeIntervalMs (${probeIntervalMs}) > 0 are required`);
    this.maxMs = maxMs;
    this.probeIntervalMs = probeIntervalMs;
    this.#isInline = maxMs > 0;
  }

  get isInline(): boolean {
    return this.#isInline;
  }

  /** The moving mean of inline durations (ms), or -1 before the first. */
  get meanMs(): number {
    return this.#meanMs;
  }

  /** True: run this call inline and `observe` its duration; false: on the thread pool. */
  shouldInline(nowMs: number): boolean {
    if (this.#isInline || (this.maxMs > 0 && nowMs >= this.#nextProbeMs)) {
      this.inlineCalls++;
      return true;
    }
    this.pooledCalls++;
    return false;
  }

  /** The duration of a call that ran inline. */
  observe(durationMs: number, nowMs: number): void {
    if (!this.#isInline) {
      // A probe: within maxMs brings the calls back inline (a disk near the limit flips at most once per probe
      // interval), else the next probe in probeIntervalMs.
      if (durationMs <= this.maxMs) {
        this.#isInline = true;
        this.#meanMs = durationMs;
      } else {
        this.#nextProbeMs = nowMs + this.probeIntervalMs;
      }
      return;
    }
    this.#meanMs = this.#meanMs < 0 ? durationMs : this.#meanMs + MEAN_WEIGHT * (durationMs - this.#meanMs);
    if (this.#meanMs > this.maxMs) {
      this.#isInline = false;
      this.#nextProbeMs = nowMs + this.probeIntervalMs;
    }
  }
}

/** The governors of one process's log files (all on the broker's data disk): writes and fdatasyncs apart, as their costs differ. */
export interface InlineIo {
  readonly write: InlineIoGovernor;
  readonly sync: InlineIoGovernor;
}

const byMaxMs = new Map<number, InlineIo>();

/** The process-wide governors for `maxMs` (limits.inlineIoMaxMs): every log of a broker shares them. */
export function processInlineIo(maxMs: number): InlineIo {
  let io = byMaxMs.get(maxMs);
  if (!io) {
    io = { write: new InlineIoGovernor(maxMs), sync: new InlineIoGovernor(maxMs) };
    byMaxMs.set(maxMs, io);
  }
  return io;
}
