/**
 * Drives a TrafficSimulation at a target rate through any `send` (the SDK's
 * producer in the dashboard page or in Node), with a bounded number of
 * unacknowledged sends: when the broker or the outbox slows down, the run
 * slows down instead of piling up promises (backpressure).
 *
 * Runs in browsers and Node (timers only, no Node APIs).
 */
import type { ActivityEvent } from '../activity.ts';
import type { TrafficSimulation } from './simulation.ts';

export interface TrafficProgress {
  sent: number;
  acked: number;
  failed: number;
  /** Acknowledged events per second over the last second or so. */
  ackedPerSec: number;
  elapsedMs: number;
  done: boolean;
  /** First send error, if any (the run continues; failures are counted). */
  lastError: unknown;
}

export interface TrafficRunOptions {
  simulation: TrafficSimulation;
  /** Resolves once the broker acknowledged the event (SDK `producer.send`). */
  send: (event: ActivityEvent) => Promise<unknown>;
  ratePerSec: number;
  /** Stop after this many events (default: unbounded). */
  maxEvents?: number;
  /** Stop after this long (default: unbounded). One of maxEvents, durationMs or signal should end the run. */
  durationMs?: number;
  /** Stop generating, then wait for the acks of what was sent. */
  stopSignal?: AbortSignal;
  /** Abort: stop generating and resolve at once. */
  signal?: AbortSignal;
  onProgress?: (progress: TrafficProgress) => void;
  now?: () => number;
}

export const trafficLimits = {
  /** Sends awaiting their ack; beyond it the run waits. Too high hides a stalled broker, too low caps throughput at inflight/RTT. */
  maxInflightSends: 5_000,
  /** Pacing tick; the rate is honoured on average over ticks. */
  tickMs: 100,
} as const;

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Produce simulated events until maxEvents, durationMs or abort; then resolves once every sent event settled (at once on abort). */
export async function runTraffic(options: TrafficRunOptions): Promise<TrafficProgress> {
  if (!(options.ratePerSec > 0)) throw new RangeError(`ratePerSec must be > 0, got ${options.ratePerSec}`);
  const now = options.now ?? Date.now;
  const startMs = now();
  const maxEvents = options.maxEvents ?? Infinity;
  const progress: TrafficProgress = { sent: 0, acked: 0, failed: 0, ackedPerSec: 0, elapsedMs: 0, done: false, lastError: undefined };
  let inflight = 0;
  let rateSample = { atMs: startMs, acked: 0 };

  const settle = (ok: boolean, error?: unknown): void => {
    inflight--;
    if (ok) progress.acked++;
    else {
      progress.failed++;
      progress.lastError ??= error;
    }
  };
  const report = (): void => {
    const nowMs = now();
    progress.elapsedMs = nowMs - startMs;
    if (nowMs - rateSample.atMs >= 1000) {
      progress.ackedPerSec = Math.round(((progress.acked - rateSample.acked) * 1000) / (nowMs - rateSample.atMs));
      rateSample = { atMs: nowMs, acked: progress.acked };
    }
    options.onProgress?.({ ...progress });
  };
  const isStopped = (): boolean =>
    options.signal?.aborted === true || options.stopSignal?.aborted === true || progress.sent >= maxEvents ||
    (options.durationMs !== undefined && now() - startMs >= options.durationMs);

  while (!isStopped()) {
    const due = Math.floor(((now() - startMs) * options.ratePerSec) / 1000) + 1 - progress.sent;
    const batch = Math.min(due, maxEvents - progress.sent, trafficLimits.maxInflightSends - inflight);
    for (let i = 0; i < batch; i++) {
      const event = options.simulation.next(now());
      progress.sent++;
      inflight++;
      options.send(event).then(() => settle(true), (error: unknown) => settle(false, error));
    }
    report();
    await sleep(trafficLimits.tickMs);
  }
  // An abort does not wait for acks: durable sends stay in the SDK's outbox and are delivered later.
  while (inflight > 0 && options.signal?.aborted !== true) {
    report();
    await sleep(trafficLimits.tickMs);
  }
  progress.done = true;
  report();
  return { ...progress };
}
