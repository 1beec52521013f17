/**
 * Condition: wait until a predicate over some state holds, without polling
 * (a condition variable with Mesa semantics). The state's owner calls
 * `notify()` after every change that can make a predicate true; each waiter
 * re-checks its predicate then and resolves once it holds.
 * Invariant: a waiter is resolved exactly once and then dropped.
 */
export class Condition {
  /** Each waiter re-checks its predicate; true = resolved, drop it. */
  #waiters: (() => boolean)[] = [];

  /** Resolves once `holds()` is true: at once if it already is, else at the `notify()` that makes it so. */
  until(holds: () => boolean): Promise<void> {
    if (holds()) return Promise.resolve();
    return new Promise((resolve) => this.#waiters.push(() => holds() && (resolve(), true)));
  }

  /** The state changed: resolves the waiters whose predicate now holds. Costs nothing while none wait. */
  notify(): void {
    if (this.#waiters.length > 0) this.#waiters = this.#waiters.filter((w) => !w());
  }
}
