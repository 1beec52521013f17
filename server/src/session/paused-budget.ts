/**
 * Broker-wide bound on what slow consumers hold: each paused socket (over
 * maxBackpressureBytes) may keep up to about twice that buffered until
 * slowConsumerTimeoutMs, and many stalled clients together would fill memory
 * (per-socket limits times maxConnections is no bound). When the paused
 * sockets together hold more than `maxPausedBufferedBytes`, the sweep closes
 * the most-buffered ones at once (SLOW_CONSUMER), sparing the others.
 * Pure: the driver (ws-endpoint.ts) measures and closes.
 */

export interface PausedSocket<T> {
  readonly socket: T;
  readonly bufferedBytes: number;
}

/** The sockets to close, most-buffered first, so that the rest hold at most `budgetBytes`. */
export function overPausedBudget<T>(paused: readonly PausedSocket<T>[], budgetBytes: number): T[] {
  let total = 0;
  for (const p of paused) total += p.bufferedBytes;
  if (total <= budgetBytes) return [];
  const close: T[] = [];
  for (const p of [...paused].sort((a, b) => b.bufferedBytes - a.bufferedBytes)) {
    if (total <= budgetBytes) break;
    close.push(p.socket);
    total -= p.bufferedBytes;
  }
  return close;
}
