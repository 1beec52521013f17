/**
 * Page lifecycle: which platform events make the connection reconnect at once, or close and wait.
 * - `online` (window and workers): the network is back: dial now instead of after the backoff.
 * - `pagehide` (persisted or not) and `freeze` (document, Chromium's Page Lifecycle API): close cleanly and
 *   dial no more. Chromium keeps no page with an open WebSocket in the back/forward cache; closing here is what
 *   makes the page eligible, and a frozen page's timers do not run, so its link would die unnoticed.
 * - `pageshow` (window; `persisted`: restored from the back/forward cache) and `resume` (document): dial again.
 * Nothing else: no `offline` (Chromium fires it for a lost adapter while a socket over another route works).
 * Runtimes without these events (Node, a SharedWorker without `pagehide`) install nothing for them.
 */

/** The events this module listens to, on a window or worker scope (`document` only on a window). */
export interface LifecycleTarget {
  addEventListener(type: string, listener: () => void): void;
  removeEventListener(type: string, listener: () => void): void;
}
export interface LifecycleScope extends LifecycleTarget {
  document?: LifecycleTarget;
}

export interface LifecycleHandlers {
  /** The network is back. */
  online(): void;
  /** The page is hidden for good or frozen: close, nothing lost. */
  suspend(): void;
  /** The page is shown again (from the back/forward cache) or resumed. */
  resume(): void;
}

/** The global scope when it dispatches events (a window or worker), else undefined (Node). */
export function defaultLifecycleScope(): LifecycleScope | undefined {
  const scope = globalThis as Partial<LifecycleScope>;
  return typeof scope.addEventListener === 'function' ? (scope as LifecycleScope) : undefined;
}

/** Listens for the lifecycle events of `scope`; returns the remover. */
export function watchPageLifecycle(scope: LifecycleScope, handlers: LifecycleHandlers): () => void {
  const { online, suspend, resume } = handlers;
  const pairs: [LifecycleTarget, string, () => void][] = [[scope, 'online', online], [scope, 'pagehide', suspend], [scope, 'pageshow', resume]];
  const doc = scope.document;
  if (doc && typeof doc.addEventListener === 'function') pairs.push([doc, 'freeze', suspend], [doc, 'resume', resume]);
  for (const [target, type, listener] of pairs) target.addEventListener(type, listener);
  return () => { for (const [target, type, listener] of pairs) target.removeEventListener(type, listener); };
}
