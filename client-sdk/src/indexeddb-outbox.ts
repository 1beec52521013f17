/**
 * The producer half of the IndexedDB storage: the outbox (unacknowledged records and frozen batches, the
 * producer's id and sequences) and the outboxes of clients that are gone, in the database of
 * indexeddb-database.ts. `indexedDbProducerStorage()` is this half alone, for `createProducer` apps.
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
import { BATCHES, META, RECORDS, openDb, openRunnelDb, req, write, type IndexedDbStorageOptions } from './indexeddb-database.ts';
import type { AdoptedOutbox, OutboxStore, ProducerStorage } from './storage.ts';
import { VERBOSE } from '#verbose';

/** Takes the Web Lock `name` if it is free; resolves with its release, or null when another context holds it. */
function tryLock(locks: LockManager, name: string): Promise<(() => void) | null> {
  return new Promise((resolve) => {
    void locks.request(name, { ifAvailable: true }, (lock) => (lock ? new Promise<void>((release) => resolve(release)) : resolve(null)));
  });
}

const openOutboxDb = (name: string): Promise<IDBDatabase> => openDb(name, 1, (raw) => {
  for (const store of [RECORDS, BATCHES, META]) raw.createObjectStore(store, store === META ? undefined : { keyPath: 'id' });
});

/**
 * Takes this client's outbox slot of the database `db` (opened as `options` say) and returns its outbox,
 * the adoption of orphaned slots, and `close` (which releases the slot but leaves `db` to the caller).
 */
export async function outboxPart(db: IDBDatabase, options: IndexedDbStorageOptions): Promise<ProducerStorage> {
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
    if (own === slots) { db.close(); throw new RunnelError('LIMIT_EXCEEDED', VERBOSE ? `all ${slots} outbox slots of IndexedDB database "${name}" are in use (maxOutboxes)` : ''); }
  }
  const ownDb = await slotDb(own);
  const adopted = new Set<(drop: boolean) => Promise<void>>();
  return {
    outbox: outboxStore(ownDb),
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
      releaseOwn();
    },
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

/**
 * The outbox only, for a producer-only app (`createProducer`); same database and outbox slots as
 * `indexedDbStorage` (records a full client left are drained by it, and the other way round).
 * @example const producer = createProducer({ urls, storage: indexedDbProducerStorage({ name: 'runnel-shop' }) });
 */
export async function indexedDbProducerStorage(options: IndexedDbStorageOptions = {}): Promise<ProducerStorage> {
  const db = await openRunnelDb(options);
  const part = await outboxPart(db, options);
  return { ...part, close() { db.close(); part.close(); } };
}
