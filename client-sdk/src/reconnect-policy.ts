/**
 * Reconnect policy (sans-IO): which bootstrap URL to try next and how long
 * to wait first. Exponential backoff with "full jitter" (AWS Architecture
 * Blog, "Exponential Backoff and Jitter"): delay = random(0, min(cap,
 * base * 2^attempt)), so thousands of tabs reconnecting after a broker
 * restart spread out instead of stampeding. A broker hint (`retryAfterMs`
 * of an error frame) is a floor. Randomness comes in as a function so tests
 * use a seeded generator. Defaults: `defaultReconnect` in limits.ts.
 */

export interface ReconnectOptions {
  /** First backoff ceiling (ms). */
  initialDelayMs: number;
  /** Backoff ceiling cap (ms); also caps broker hints. */
  maxDelayMs: number;
  /** Growth of the ceiling per failed attempt. */
  multiplier: number;
}

/** What the driver must do next: wait `delayMs`, then dial `urls[urlIndex]`. */
export interface ReconnectStep { delayMs: number; urlIndex: number; attempt: number }

/** A uniform random number in [0, 1). */
export type RandomSource = () => number;

/** Mulberry32: a tiny seeded PRNG for reproducible jitter in tests. */
export function seededRandom(seed: number): RandomSource {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * The delay before reconnect attempt `attempt` (0 = first retry after a
 * loss). `retryAfterMs` from the broker raises the floor (capped).
 */
export function backoffDelayMs(attempt: number, options: ReconnectOptions, random: RandomSource, retryAfterMs = 0): number {
  const ceiling = Math.min(options.maxDelayMs, options.initialDelayMs * Math.pow(options.multiplier, Math.min(attempt, 52)));
  const jittered = Math.floor(random() * ceiling);
  return Math.max(jittered, Math.min(retryAfterMs, options.maxDelayMs));
}

/**
 * Tracks consecutive failures across a URL list. `connected()` resets it;
 * `failed()` returns the next step: rotate to the next URL, back off more
 * after each full round of URLs.
 */
export class ReconnectPolicy {
  private attempt = 0;
  private urlIndex = 0;

  constructor(private readonly urlCount: number, private readonly options: ReconnectOptions, private readonly random: RandomSource) {}

  /** The URL to dial first (or after a reset). */
  get currentUrlIndex(): number {
    return this.urlIndex;
  }

  connected(): void {
    this.attempt = 0;
  }

  failed(retryAfterMs = 0): ReconnectStep {
    const attempt = this.attempt++;
    this.urlIndex = (this.urlIndex + 1) % this.urlCount;
    const round = Math.floor(attempt / this.urlCount);
    return { delayMs: backoffDelayMs(round, this.options, this.random, retryAfterMs), urlIndex: this.urlIndex, attempt };
  }
}
