/**
 * IndexedDB Storage (browser; `@runnel/client/indexeddb`), on `idb`.
 * Object stores: `offsets` ([consumerId, topic, partition] → {partition,
 * offset, topicId}), `outboxRecords` and `outboxBatches` (by id), `meta`
 * ('producer'). Apps that want exactly-once handling add their own stores
 * through `version` + `upgrade`, so one transaction can span their writes
 * and the offset (IndexedDB transactions cannot span databases).
 */
import { openDB, type IDBPDatabase, type IDBPTransaction } from 'idb';
import type { OffsetStore, OutboxStore, Storage, StoredOffset } from './storage.ts';

export interface IndexedDbStorageOptions {
  /** Database name; use one per clientId. Default 'runnel'. */
  name?: string;
  /** Database version for the app's own stores (≥ 1). */
  version?: number;
  /** Creates the app's own stores; runs after Runnel's stores exist. */
  upgrade?: (db: IDBDatabase, oldVersion: number) => void;
}

const OFFSETS = 'offsets', RECORDS = 'outboxRecords', BATCHES = 'outboxBatches', META = 'meta';

interface OffsetRow { partition: number; offset: number; topicId: string }

const range = (consumerId: string, topic: string): IDBKeyRange => IDBKeyRange.bound([consumerId, topic], [consumerId, topic, []]);

/**
 * @example const storage = await indexedDbStorage({ name: 'runnel-shop' });
 */
export async function indexedDbStorage(options: IndexedDbStorageOptions = {}): Promise<Storage> {
  // NB: idb uses the global indexedDB (Node tests install `fake-indexeddb/auto`).
  const db = await openDB(options.name ?? 'runnel', options.version ?? 1, {
    upgrade(raw, oldVersion) {
      for (const name of [OFFSETS, RECORDS, BATCHES, META]) {
        if (!raw.objectStoreNames.contains(name)) raw.createObjectStore(name, name === RECORDS || name === BATCHES ? { keyPath: 'id' } : undefined);
      }
      options.upgrade?.(raw as unknown as IDBDatabase, oldVersion);
    },
  });
  return { offsets: offsetStore(db), outbox: outboxStore(db), close: () => db.close() };
}

function offsetStore(db: IDBPDatabase): OffsetStore {
  const put = (store: { put(v: unknown, k: IDBValidKey): unknown }, consumerId: string, topic: string, offsets: ReadonlyMap<number, StoredOffset>): void => {
    for (const [partition, { offset, topicId }] of offsets) store.put({ partition, offset, topicId } satisfies OffsetRow, [consumerId, topic, partition]);
  };
  return {
    async getOffsets(consumerId, topic) {
      const rows: OffsetRow[] = await db.getAll(OFFSETS, range(consumerId, topic));
      return new Map(rows.map((r) => [r.partition, { offset: r.offset, topicId: r.topicId }]));
    },
    async putOffsets(consumerId, topic, offsets) {
      const tx = db.transaction(OFFSETS, 'readwrite');
      put(tx.store, consumerId, topic, offsets);
      await tx.done;
    },
    async deleteOffsets(consumerId, topic) {
      await db.delete(OFFSETS, range(consumerId, topic));
    },
    async transact(storeNames, consumerId, topic, work) {
      const tx = db.transaction([...storeNames, OFFSETS], 'readwrite');
      try {
        const offsets = await work(tx);
        put(tx.objectStore(OFFSETS), consumerId, topic, offsets);
      } catch (error) {
        try { tx.abort(); } catch { /* already finished */ }
        throw error;
      }
      await tx.done;
    },
  };
}

function outboxStore(db: IDBPDatabase): OutboxStore {
  const write = async (stores: string[], fn: (tx: IDBPTransaction<unknown, string[], 'readwrite'>) => void): Promise<void> => {
    const tx = db.transaction(stores, 'readwrite');
    fn(tx);
    await tx.done;
  };
  return {
    async load() {
      const tx = db.transaction([RECORDS, BATCHES, META]);
      const [records, batches, producer] = await Promise.all([
        tx.objectStore(RECORDS).getAll(), tx.objectStore(BATCHES).getAll(), tx.objectStore(META).get('producer'),
      ]);
      return { producer: producer ?? null, records, batches };
    },
    addRecords: (records) => write([RECORDS], (tx) => { for (const r of records) tx.objectStore(RECORDS).put(r); }),
    freeze: (batches, producer) => write([RECORDS, BATCHES, META], (tx) => {
      for (const b of batches) {
        tx.objectStore(BATCHES).put(b);
        for (const id of b.recordIds) tx.objectStore(RECORDS).delete(id);
      }
      tx.objectStore(META).put(producer, 'producer');
    }),
    deleteBatches: (ids) => write([BATCHES], (tx) => { for (const id of ids) tx.objectStore(BATCHES).delete(id); }),
    deleteRecords: (ids) => write([RECORDS], (tx) => { for (const id of ids) tx.objectStore(RECORDS).delete(id); }),
    saveProducer: (producer) => write([META], (tx) => { tx.objectStore(META).put(producer, 'producer'); }),
  };
}
