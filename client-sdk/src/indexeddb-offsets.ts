/**
 * The consumer half of the IndexedDB storage: consumer offsets (with the exactly-once `transact` of a
 * `transactional` handler) and materialized states, in the database of indexeddb-database.ts.
 * `indexedDbConsumerStorage()` is this half alone, for `createConsumer` apps: no outbox in their bundle
 * and no outbox slot taken.
 */
import { OFFSETS, STATES, done, openRunnelDb, req, write, type IndexedDbStorageOptions } from './indexeddb-database.ts';
import type { ConsumerStorage, OffsetStore, StateSnapshot, StateStore, StoredOffset } from './storage.ts';

/** idb's `wrap`, loaded the first time a `transactional` handler needs its typed transaction. */
let wrapTx: Promise<(tx: IDBTransaction) => unknown> | undefined;

interface OffsetRow { partition: number; offset: number; topicId: string }

const range = (consumerId: string, topic: string): IDBKeyRange => IDBKeyRange.bound([consumerId, topic], [consumerId, topic, []]);

export function offsetStore(db: IDBDatabase): OffsetStore {
  const put = (store: IDBObjectStore, consumerId: string, topic: string, offsets: ReadonlyMap<number, StoredOffset>): void => {
    for (const [partition, { offset, topicId }] of offsets) store.put({ partition, offset, topicId } satisfies OffsetRow, [consumerId, topic, partition]);
  };
  return {
    async getOffsets(consumerId, topic) {
      const rows: OffsetRow[] = await req(db.transaction(OFFSETS).objectStore(OFFSETS).getAll(range(consumerId, topic)));
      return new Map(rows.map((r) => [r.partition, { offset: r.offset, topicId: r.topicId }]));
    },
    putOffsets: (consumerId, topic, offsets) => write(db, OFFSETS, (tx) => put(tx.objectStore(OFFSETS), consumerId, topic, offsets)),
    deleteOffsets: (consumerId, topic) => write(db, OFFSETS, (tx) => tx.objectStore(OFFSETS).delete(range(consumerId, topic))),
    async transact(storeNames, consumerId, topic, work) {
      const wrap = await (wrapTx ??= import('idb').then((m) => m.wrap as (tx: IDBTransaction) => unknown));
      const tx = db.transaction([...storeNames, OFFSETS], 'readwrite');
      const committed = done(tx);
      committed.catch(() => {}); // NB: awaited below; an abort while `work` runs must not be an unhandled rejection
      try {
        const offsets = await work(wrap(tx));
        put(tx.objectStore(OFFSETS), consumerId, topic, offsets);
      } catch (error) {
        try { tx.abort(); } catch { /* already finished */ }
        throw error;
      }
      await committed;
    },
  };
}

interface StateRow { state: unknown; offsets: [number, StoredOffset][]; recordCount: number }

export function stateStore(db: IDBDatabase): StateStore {
  return {
    async getState(name, topic) {
      const row = (await req(db.transaction(STATES).objectStore(STATES).get([name, topic]))) as StateRow | undefined;
      return row ? { state: row.state, offsets: new Map(row.offsets), recordCount: row.recordCount } satisfies StateSnapshot : null;
    },
    // NB: put() structured-clones the row now, in one transaction: state and offsets are one atomic write.
    putState: (name, topic, { state, offsets, recordCount }) => write(db, STATES, (tx) => tx.objectStore(STATES).put(
      { state, offsets: [...offsets].map(([p, o]) => [p, { ...o }]), recordCount } satisfies StateRow, [name, topic])),
    deleteState: (name, topic) => write(db, STATES, (tx) => tx.objectStore(STATES).delete([name, topic])),
  };
}

/**
 * Offsets and states only, for a consumer-only app (`createConsumer`); same database as `indexedDbStorage`
 * (a full client opening it later sees these offsets).
 * @example const consumer = createConsumer({ urls, storage: indexedDbConsumerStorage({ name: 'runnel-shop' }) });
 */
export async function indexedDbConsumerStorage(options: IndexedDbStorageOptions = {}): Promise<ConsumerStorage> {
  const db = await openRunnelDb(options);
  return { offsets: offsetStore(db), states: stateStore(db), close: () => db.close() };
}
