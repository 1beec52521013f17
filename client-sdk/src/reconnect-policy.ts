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
 * A session shorter than this that drops counts as a failed attempt (the backoff keeps growing): a broker
 * that says helloOk and then closes at once (shutting down, refusing the token) is not redialled in a loop.
 */
export const STABLE_SESSION_MS = 1_000;

/**
 * Fast retries after a healthy link: for this long after a stable session dropped (or the network came back,
 * `hurry`), the backoff ceiling stays at FAST_RETRY_MAX_DELAY_MS instead of growing to `maxDelayMs`. A broker
 * restart takes seconds; with the plain backoff a page dialled again up to 10 s after the broker answered.
 * Why dials and not an HTTP `/readyz` probe: against a broker that is down a dial costs what a probe costs (a
 * refused TCP connect), it needs no CORS, and it works where `fetch` is missing or another origin is refused.
 * Longer: a long outage is dialled at 2–4 per second per client for longer; shorter: a slow restart falls back
 * to the plain backoff sooner.
 */
export const FAST_RETRY_WINDOW_MS = 30_000;

/**
 * The backoff ceiling inside FAST_RETRY_WINDOW_MS. Full jitter below it spreads a thousand clients of a restarted
 * broker over this long (about 2,000 hellos/s for 1,000 tabs; each client dials on average every half of it while
 * the broker is down), and bounds how long a client lags behind a broker that answers again. Lower: more dials
 * and a sharper stampede; higher: more lag. A broker's `retryAfterMs` hint still is a floor.
 */
export const FAST_RETRY_MAX_DELAY_MS = 500;

/**
 * Tracks consecutive failures across a URL list (sans-IO: time comes in as `nowMs`).
 * - `lost(nowMs)`: an established session dropped. Its broker is probably gone and the next one
 *   probably up (a cluster serves every topic from every broker), so the next URL is dialled at once
 *   (delay 0); with one URL, or after a session shorter than STABLE_SESSION_MS, it backs off as a failure.
 * - `failed(retryAfterMs)`: a dial or hello failed: the next URL after a full-jitter backoff whose
 *   ceiling grows once per full round of the list (the first round stays within `initialDelayMs`).
 *   A broker hint (`retryAfterMs`) is a floor only when the next dial goes back to the same URL (one
 *   URL): another broker is not held to it.
 * `connected(nowMs)` starts a session; the count resets once a session lasted STABLE_SESSION_MS.
 * A stable session that drops, and `hurry(nowMs)` (the network is back, the page resumed), open a window of
 * FAST_RETRY_WINDOW_MS in which the ceiling stays at FAST_RETRY_MAX_DELAY_MS (time comes in through `failed`).
 */
export class ReconnectPolicy {
  #attempt = 0;
  #urlIndex = 0;
  #connectedAtMs = 0;
  #fastUntilMs = -Infinity;

  readonly #urlCount: number;
  readonly #options: ReconnectOptions;
  readonly #random: RandomSource;

  constructor(urlCount: number, options: ReconnectOptions, random: RandomSource) {
    this.#urlCount = urlCount;
    this.#options = options;
    this.#random = random;
  }

  /** The URL to dial first (or after a reset). */
  get currentUrlIndex(): number {
    return this.#urlIndex;
  }

  connected(nowMs: number): void {
    this.#connectedAtMs = nowMs;
  }

  /** Retries fast from now on (FAST_RETRY_WINDOW_MS) and starts the count again: the cause of the failures went away. */
  hurry(nowMs: number): void {
    this.#attempt = 0;
    this.#fastUntilMs = nowMs + FAST_RETRY_WINDOW_MS;
  }

  lost(nowMs: number, retryAfterMs = 0): ReconnectStep {
    if (nowMs - this.#connectedAtMs >= STABLE_SESSION_MS) this.hurry(nowMs);
    const step = this.failed(retryAfterMs, nowMs);
    // NB: only the first dial after a reset goes at once: a broker that keeps closing short sessions is backed off from.
    if (step.attempt === 0 && this.#urlCount > 1) step.delayMs = 0;
    return step;
  }

  /** `nowMs` omitted: no fast window applies. */
  failed(retryAfterMs = 0, nowMs = Infinity): ReconnectStep {
    const attempt = this.#attempt++;
    this.#urlIndex = (this.#urlIndex + 1) % this.#urlCount;
    const round = Math.floor(attempt / this.#urlCount);
    const options = nowMs < this.#fastUntilMs ? { ...this.#options, maxDelayMs: Math.min(this.#options.maxDelayMs, FAST_RETRY_MAX_DELAY_MS) } : this.#options;
    const hint = this.#urlCount === 1 ? Math.min(retryAfterMs, this.#options.maxDelayMs) : 0;
    return { delayMs: Math.max(backoffDelayMs(round, options, this.#random), hint), urlIndex: this.#urlIndex, attempt };
  }
}
