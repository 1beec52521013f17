/**
 * Test page for the page-lifecycle browser tests (sdk-lifecycle.test.ts): the SDK test page (sdk-page.ts:
 * IndexedDB outbox and offsets, a transactional journal) plus a record of what the page lived through:
 * `online`/`offline`/`pagehide`/`pageshow` (with `persisted`), `freeze`/`resume`, and every connection state
 * change, each with `performance.now()`, so a test can tell how long after `online` the page was connected.
 * The states are sampled every STATE_SAMPLE_MS (the page's API shows the state, not its events): a bound
 * on what a measured delay can be off by.
 */
import './sdk-page.ts';

export interface LifecycleEntry { what: string; atMs: number; persisted?: boolean }

declare global {
  interface Window { runnelLifecycle: { entries: LifecycleEntry[]; notRestoredReasons(): unknown } }
}

/** How often the connection state is sampled (ms). */
export const STATE_SAMPLE_MS = 2;

const entries: LifecycleEntry[] = [];
for (const type of ['online', 'offline', 'pagehide', 'pageshow'] as const) {
  window.addEventListener(type, (event) => entries.push({ what: type, atMs: performance.now(), ...('persisted' in event ? { persisted: (event as PageTransitionEvent).persisted } : {}) }));
}
for (const type of ['freeze', 'resume'] as const) document.addEventListener(type, () => entries.push({ what: type, atMs: performance.now() }));

let last = '';
setInterval(() => {
  const state = window.runnelPage.state();
  if (state !== last) entries.push({ what: `state:${state}`, atMs: performance.now() });
  last = state;
}, STATE_SAMPLE_MS);

window.runnelLifecycle = {
  entries,
  // Chromium 123+: why the last navigation back was not served from the back/forward cache.
  notRestoredReasons: () => (performance.getEntriesByType('navigation')[0] as unknown as { notRestoredReasons?: unknown })?.notRestoredReasons ?? null,
};
