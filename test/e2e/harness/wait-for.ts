/**
 * Waiting for conditions instead of sleeping: tests run on a loaded 2-core
 * machine, so correctness never depends on a fixed delay, only on a
 * condition polled until a generous deadline.
 */

/** Generous default: other suites share the CPU. */
export const DEFAULT_WAIT_MS = 45_000;

/**
 * Polls `probe` until it returns a value other than undefined/false and
 * returns that value; throws after `timeoutMs` with the last error and the
 * optional `context()` text (e.g. the broker log tail).
 * @example const hw = await waitFor('hw ≥ 10', async () => (await highWatermark()) >= 10 && hw);
 */
export async function waitFor<T>(
  what: string,
  probe: () => T | undefined | false | Promise<T | undefined | false>,
  options: { timeoutMs?: number; intervalMs?: number; context?: () => string } = {},
): Promise<T> {
  const deadline = Date.now() + (options.timeoutMs ?? DEFAULT_WAIT_MS);
  const intervalMs = options.intervalMs ?? 100;
  let last: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined && value !== false) return value;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) {
      const why = last ? `: ${last instanceof Error ? last.message : String(last)}` : '';
      throw new Error(`timed out after ${options.timeoutMs ?? DEFAULT_WAIT_MS} ms waiting for ${what}${why}${options.context ? `\n${options.context()}` : ''}`);
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

/** Resolves after `ms`. Only for pacing (a producer's rate, a random moment), never for correctness. */
export const pause = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
