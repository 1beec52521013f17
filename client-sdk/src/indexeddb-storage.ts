/**
 * IndexedDB Storage (browser; `@runnel/client/indexeddb`), on the raw IndexedDB API (a few promisified
 * requests); idb's typed wrapper is loaded lazily, only for the transaction a `transactional` handler gets.
 * Object stores: `offsets` ([consumerId, topic, partition] → {partition,
 * offset, topicId}), `outboxRecords` and `outboxBatches` (by id), `meta`
 * ('producer'), `states` ([name, topic] → a materialized state with its
 * offsets, one row so one put is one atomic write). Apps that want
 * exactly-once handling add their own stores through `version` + `upgrade`,
 * so one transaction can span their writes and the offset (IndexedDB
 * transactions cannot span databases).
 *
 * Versions: the database version is the app's `version` + RUNNEL_SCHEMA − 1
 * (schema 1 had no `states`; a schema-1 database at version v opens as v + 1
 * and gains the store). The app's `upgrade` always sees its own version
 * numbers. NB: an older SDK cannot open a database this one upgraded.
 *
 * One outbox, one owner: every client on a database (a tab without a
 * SharedWorker, a second SharedWorker after a deploy) takes the first free
 * outbox slot, held with a Web Lock for its lifetime — slot 0 in the main
 * database, slot k in `<name>~outbox<k>` — so no two clients ever share
 * records, producer id or sequences. Slots whose owner is gone are handed to
 * a live client through `orphans()` and drained with their own producer id.
 * Without Web Locks (Node, old browsers) there is only slot 0: give each
 * client its own database name.
 */
import { RunnelError } from './codec/error-codes.ts';
import type { AdoptedOutbox, OffsetStore, OutboxStore, StateSnapshot, StateStore, Storage, StoredOffset } from './storage.ts';

/** The request's result once it succeeds; its error when it fails. */
const req = <T>(r: IDBRequest<T>): Promise<T> => new Promise((resolve, reject) => {
  r.onsuccess = () => resolve(r.result);
  r.onerror = () => reject(r.error);
});

/** Resolves when `tx` commits; rejects with its error (or an AbortError) when it aborts. */
const done = (tx: IDBTransaction): Promise<void> => new Promise((resolve, reject) => {
  tx.oncomplete = () => resolve();
  tx.onerror = tx.onabort = () => reject(tx.error ?? new DOMException('AbortError', 'AbortError'));
});

/** Opens `name` at `version`, running `upgrade` (a throw aborts the open) when it is older. */
function openDb(name: string, version: number, upgrade: (db: IDBDatabase, oldVersion: number) => void): Promise<IDBDatabase> {
  const r = indexedDB.open(name, version);
  r.onupgradeneeded = (e) => upgrade(r.result, e.oldVersion);
  return req(r);
}

/** One readwrite transaction over `stores`: `fn` queues its requests, the promise waits for the commit. */
async function write(db: IDBDatabase, stores: string | string[], fn: (tx: IDBTransaction) => void): Promise<void> {
  const tx = db.transaction(stores, 'readwrite');
  const committed = done(tx);
  try {
    fn(tx);
  } catch (error) {
    committed.catch(() => {}); // NB: the abort below rejects it; the caller gets `error`
    try { tx.abort(); } catch { /* already finished */ }
    throw error;
  }
  return committed;
}

/** idb's `wrap`, loaded the first time a `transactional` handler needs its typed transaction. */
let wrapTx: Promise<(tx: IDBTransaction) => unknown> | undefined;

export interface IndexedDbStorageOptions {
  /** Database name; use one per clientId. Default 'runnel'. */
  name?: string;
  /** Database version for the app's own stores (≥ 1). */
  version?: number;
  /** Creates the app's own stores; runs after Runnel's stores exist. */
  upgrade?: (db: IDBDatabase, oldVersion: number) => void;
  /** Clients that may use this database at once, each with its own outbox slot. Default 16. */
  maxOutboxes?: number;
}

/** Takes the Web Lock `name` if it is free; resolves with its release, or null when another context holds it. */
function tryLock(locks: LockManager, name: string): Promise<(() => void) | null> {
  return new Promise((resolve) => {
    void locks.request(name, { ifAvailable: true }, (lock) => (lock ? new Promise<void>((release) => resolve(release)) : resolve(null)));
  });
}

const openOutboxDb = (name: string): Promise<IDBDatabase> => openDb(name, 1, (raw) => {
  for (const store of [RECORDS, BATCHES, META]) raw.createObjectStore(store, store === META ? undefined : { keyPath: 'id' });
});

const OFFSETS = 'offsets', RECORDS = 'outboxRecords', BATCHES = 'outboxBatches', META = 'meta', STATES = 'states';
/** Runnel's own schema: 1 = offsets + outbox, 2 = + states. Bump with an upgrade step below. */
const RUNNEL_SCHEMA = 2;

interface OffsetRow { partition: number; offset: number; topicId: string }

const range = (consumerId: string, topic: string): IDBKeyRange => IDBKeyRange.bound([consumerId, topic], [consumerId, topic, []]);

/**
 * @example const storage = await indexedDbStorage({ name: 'runnel-shop' });
 */
export async function indexedDbStorage(options: IndexedDbStorageOptions = {}): Promise<Storage> {
  // NB: the global indexedDB (Node tests install `fake-indexeddb/auto`).
  const appVersion = options.version ?? 1;
  const db = await openDb(options.name ?? 'runnel', appVersion + RUNNEL_SCHEMA - 1, (raw, oldVersion) => {
    // Which schema the old version was in: a schema-1 database has no `states` store.
    const oldAppVersion = oldVersion > 0 && raw.objectStoreNames.contains(STATES) ? oldVersion - (RUNNEL_SCHEMA - 1) : oldVersion;
    for (const name of [OFFSETS, RECORDS, BATCHES, META, STATES]) {
      if (!raw.objectStoreNames.contains(name)) raw.createObjectStore(name, name === RECORDS || name === BATCHES ? { keyPath: 'id' } : undefined);
    }
    options.upgrade?.(raw, oldAppVersion);
  });
  const name = options.name ?? 'runnel';
  const slots = options.maxOutboxes ?? 16;
  const locks = (globalThis.navigator as Navigator | undefined)?.locks;
  const lockName = (slot: number): string => `runnel-outbox:${name}:${slot}`;
  const slotDb = (slot: number): Promise<IDBDatabase> => (slot === 0 ? Promise.resolve(db) : openOutboxDb(`${name}~outbox${slot}`));
  let own = 0, releaseOwn = (): void => {};
  if (locks) {
    for (own = 0; own < slots; own++) {
      const release = await tryLock(locks, lockName(own));
      if (release) { releaseOwn = release; break; }
    }
    if (own === slots) { db.close(); throw new RunnelError('LIMIT_EXCEEDED', `all ${slots} outbox slots of IndexedDB database "${name}" are in use (maxOutboxes)`); }
  }
  const ownDb = await slotDb(own);
  const adopted = new Set<(drop: boolean) => Promise<void>>();
  return {
    offsets: offsetStore(db), outbox: outboxStore(ownDb), states: stateStore(db),
    async orphans() {
      const out: AdoptedOutbox[] = [];
      // NB: without indexedDB.databases() every slot is tried (an empty one is created, then deleted).
      const listed = indexedDB.databases ? new Set((await indexedDB.databases()).map((d) => d.name)) : null;
      for (let slot = 0; locks && slot < slots; slot++) {
        const slotName = `${name}~outbox${slot}`;
        if (slot === own || (slot > 0 && listed && !listed.has(slotName))) continue;
        const release = await tryLock(locks, lockName(slot));
        if (!release) continue;
        const orphanDb = await slotDb(slot);
        const outbox = outboxStore(orphanDb);
        const { records, batches } = await outbox.load();
        // Emptied: a slot database is deleted while still locked, so no new owner opens it meanwhile.
        const done = async (drop: boolean): Promise<void> => {
          adopted.delete(done);
          const empty = drop && slot > 0 && (await outbox.load().then((x) => x.records.length + x.batches.length === 0, () => false));
          if (slot > 0) orphanDb.close();
          if (empty) await req(indexedDB.deleteDatabase(slotName)).catch(() => {});
          release();
        };
        adopted.add(done);
        if (records.length + batches.length === 0) await done(true);
        else out.push({ outbox, release: () => void done(true) });
      }
      return out;
    },
    close() {
      for (const done of [...adopted]) void done(false);
      if (ownDb !== db) ownDb.close();
      db.close();
      releaseOwn();
    },
  };
}

function offsetStore(db: IDBDatabase): OffsetStore {
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

function stateStore(db: IDBDatabase): StateStore {
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

function outboxStore(db: IDBDatabase): OutboxStore {
  return {
    async load() {
      const tx = db.transaction([RECORDS, BATCHES, META]);
      const [records, batches, producer] = await Promise.all([
        req(tx.objectStore(RECORDS).getAll()), req(tx.objectStore(BATCHES).getAll()), req(tx.objectStore(META).get('producer')),
      ]);
      return { producer: producer ?? null, records, batches };
    },
    // NB: a value may be a view of a larger slab (topic.ts ValueArena): cloned as it is, the whole slab would be stored; a copy is its bytes alone.
    addRecords: (records) => write(db, RECORDS, (tx) => { for (const r of records) tx.objectStore(RECORDS).put({ ...r, value: r.value && r.value.slice() }); }),
    freeze: (batches, producer) => write(db, [RECORDS, BATCHES, META], (tx) => {
      for (const b of batches) {
        tx.objectStore(BATCHES).put(b);
        for (const id of b.recordIds) tx.objectStore(RECORDS).delete(id);
      }
      tx.objectStore(META).put(producer, 'producer');
    }),
    deleteBatches: (ids) => write(db, BATCHES, (tx) => { for (const id of ids) tx.objectStore(BATCHES).delete(id); }),
    deleteRecords: (ids) => write(db, RECORDS, (tx) => { for (const id of ids) tx.objectStore(RECORDS).delete(id); }),
    saveProducer: (producer) => write(db, META, (tx) => { tx.objectStore(META).put(producer, 'producer'); }),
  };
}
