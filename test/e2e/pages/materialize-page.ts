/**
 * Test page for sdk-materialize.test.ts: folds a topic with `materialize`
 * (IndexedDB snapshots) into a state that can tell a gap or a duplicate
 * (each partition's next expected offset and an order-sensitive hash of its
 * ids). `foldRecord` is exported so the test folds the broker's log with the
 * same reducer; the page part runs only in a browser.
 */
import { createConsumer, type RunnelConsumer } from '@runnel/client/consumer';
import { indexedDbStorage } from '@runnel/client/indexeddb';
import { materialize, type Materialized } from '@runnel/client/materialize';

export interface FoldState {
  count: number;
  /** Per partition: the offset the next record must have. */
  next: Record<number, number>;
  /** Per partition: FNV-1a over the ids in offset order. */
  hash: Record<number, number>;
  /** Out-of-order offsets seen (at most 20 kept): a gap or a duplicate. */
  anomalies: string[];
}

export const initialFold = (): FoldState => ({ count: 0, next: {}, hash: {}, anomalies: [] });

export function foldRecord(state: FoldState, record: { partition: number; offset: number; value: unknown }): FoldState {
  const p = record.partition;
  const expected = state.next[p] ?? record.offset; // the first record of a partition sets where it starts
  if (record.offset !== expected && state.anomalies.length < 20) state.anomalies.push(`${p}: got ${record.offset}, expected ${expected}`);
  state.next[p] = record.offset + 1;
  let h = state.hash[p] ?? 0x811c9dc5;
  const id = String((record.value as { id?: unknown } | null)?.id ?? '');
  for (let i = 0; i < id.length; i++) h = Math.imul(h ^ id.charCodeAt(i), 16777619) >>> 0;
  state.hash[p] = h;
  state.count++;
  return state;
}

declare global {
  interface Window {
    runnelMaterialize: {
      open(o: { urls: string[]; db: string; topic: string; snapshotRecords: number; snapshotMs: number }): Promise<void>;
      state(): FoldState | null;
      /** Records in the snapshot the page loaded (read at its first change). */
      loadedCount(): number | null;
      rebuilds(): string[];
    };
  }
}

if (typeof window !== 'undefined') {
  let client: RunnelConsumer | null = null;
  let view: Materialized<FoldState> | null = null;
  const rebuilds: string[] = [];
  let loaded: number | null = null;
  window.runnelMaterialize = {
    async open({ urls, db, topic, snapshotRecords, snapshotMs }) {
      const storage = await indexedDbStorage({ name: db });
      client = createConsumer({ urls, storage });
      client.on('error', (e) => console.warn('[runnel error]', e.code ?? '', e.message));
      view = materialize(client, topic, foldRecord, { initial: initialFold, store: storage.states!, snapshotEvery: { records: snapshotRecords, ms: snapshotMs } });
      loaded = null;
      const v = view;
      v.on('change', ({ records }) => { loaded ??= v.recordCount - records.length; });
      view.on('rebuild', (e) => { rebuilds.push(e.reason); console.warn('[runnel rebuild]', e.reason); });
      view.on('error', (e) => console.warn('[materialize error]', e.code ?? '', e.message));
      await view.ready;
    },
    state: () => (view ? structuredClone(view.state) : null),
    rebuilds: () => rebuilds,
    loadedCount: () => loaded,
  };
}
