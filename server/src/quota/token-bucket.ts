/**
 * A token bucket: `perSecond` tokens flow in, up to `burst` are held, a
 * request of cost c takes c. Pure: time comes in as `nowMs` (a monotonic
 * clock such as performance.now(); a clock that steps back refills nothing
 * until it has caught up).
 *
 * Arithmetic is exact: tokens are held in thousandths, gained once per
 * whole elapsed millisecond (perSecond thousandths per ms), so with
 * integer rates and costs there is no floating-point drift.
 *
 * Admission rule:
 * - cost ≤ burst: admitted when the bucket holds at least `cost`;
 * - cost > burst (a batch larger than the burst): admitted only when the
 *   bucket is full, which drives it into debt (below zero) so the excess is
 *   paid before anything else passes. Refusing it forever would wedge a
 *   client whose largest batch is within maxBatchBytes.
 * Invariant (tested as a property): over any window of T ms the costs
 * admitted sum to at most max(burst, largest cost) + perSecond × T / 1000.
 * `charge()` (costs known only afterwards, e.g. bytes a fetch returned)
 * also debits, unconditionally.
 */
import { assert } from '@runnel/client/codec';

export interface TokenBucketRate {
  /** Tokens gained per second; an integer ≥ 1. */
  readonly perSecond: number;
  /** Tokens held at most (the largest burst admitted at once); an integer ≥ 1. */
  readonly burst: number;
}

const SCALE = 1000;

export class TokenBucket {
  /** Tokens × SCALE; may be negative (debt). */
  private scaled: number;
  private updatedAtMs: number;

  constructor(readonly rate: TokenBucketRate, nowMs: number) {
    assert(Number.isSafeInteger(rate.perSecond) && rate.perSecond >= 1, `perSecond must be an integer >= 1, got ${rate.perSecond}`);
    assert(Number.isSafeInteger(rate.burst) && rate.burst >= 1, `burst must be an integer >= 1, got ${rate.burst}`);
    this.scaled = rate.burst * SCALE;
    this.updatedAtMs = nowMs;
  }

  /** Tokens held at `nowMs` (negative while in debt). */
  tokensAt(nowMs: number): number {
    this.refill(nowMs);
    return this.scaled / SCALE;
  }

  /** Whether the bucket is full at `nowMs`: it then behaves exactly like a new one, so dropping it loses nothing. */
  isFullAt(nowMs: number): boolean {
    this.refill(nowMs);
    return this.scaled >= this.rate.burst * SCALE;
  }

  /** Milliseconds until `cost` would be admitted; 0 = now. Changes nothing but the refill. */
  waitMs(cost: number, nowMs: number): number {
    checkCost(cost);
    this.refill(nowMs);
    const needed = Math.min(cost, this.rate.burst) * SCALE;
    if (this.scaled >= needed) return 0;
    return Math.ceil((needed - this.scaled) / this.rate.perSecond);
  }

  /** Takes `cost` when admitted (see the rule above) and returns 0; otherwise takes nothing and returns the ms to wait. */
  tryTake(cost: number, nowMs: number): number {
    const waitMs = this.waitMs(cost, nowMs);
    if (waitMs === 0) this.scaled -= cost * SCALE;
    return waitMs;
  }

  /** Milliseconds until the bucket is out of debt (tokens ≥ 0); 0 = not in debt. */
  debtMs(nowMs: number): number {
    this.refill(nowMs);
    return this.scaled >= 0 ? 0 : Math.ceil(-this.scaled / this.rate.perSecond);
  }

  /** Debits `cost` unconditionally (may go into debt): for costs known only after the work was done. */
  charge(cost: number, nowMs: number): void {
    checkCost(cost);
    this.refill(nowMs);
    this.scaled -= cost * SCALE;
  }

  private refill(nowMs: number): void {
    const elapsedMs = Math.floor(nowMs - this.updatedAtMs);
    if (!(elapsedMs > 0)) return; // NB: also false for NaN; a clock stepping back refills nothing
    const cap = this.rate.burst * SCALE;
    // NB: elapsedMs × perSecond may lose precision past 2^53, but only when it is far above the cap.
    this.scaled = Math.min(cap, this.scaled + elapsedMs * this.rate.perSecond);
    this.updatedAtMs += elapsedMs;
  }
}

function checkCost(cost: number): void {
  assert(Number.isSafeInteger(cost) && cost >= 0, `a token bucket cost is an integer >= 0, got ${cost}`);
}
