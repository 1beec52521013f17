/**
 * The IndexedDB database Runnel keeps its state in (`@runnel/client/indexeddb`): its schema, how it is
 * opened and upgraded, and the few promisified requests the stores use (raw IndexedDB; idb's typed
 * wrapper is loaded lazily, only for the transaction a `transactional` handler gets). The offset and
 * state stores (indexeddb-offsets.ts) and the outbox (indexeddb-outbox.ts) are modules of their own so a
 * consumer-only or producer-only app bundles only its half.
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
 */

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

export const OFFSETS = 'offsets', RECORDS = 'outboxRecords', BATCHES = 'outboxBatches', META = 'meta', STATES = 'states';
/** Runnel's own schema: 1 = offsets + outbox, 2 = + states. Bump with an upgrade step below. */
const RUNNEL_SCHEMA = 2;

/** The request's result once it succeeds; its error when it fails. */
export const req = <T>(r: IDBRequest<T>): Promise<T> => new Promise((resolve, reject) => {
  r.onsuccess = () => resolve(r.result);
  r.onerror = () => reject(r.error);
});

/** Resolves when `tx` commits; rejects with its error (or an AbortError) when it aborts. */
export const done = (tx: IDBTransaction): Promise<void> => new Promise((resolve, reject) => {
  tx.oncomplete = () => resolve();
  tx.onerror = tx.onabort = () => reject(tx.error ?? new DOMException('AbortError', 'AbortError'));
});

/** Opens `name` at `version`, running `upgrade` (a throw aborts the open) when it is older. */
export function openDb(name: string, version: number, upgrade: (db: IDBDatabase, oldVersion: number) => void): Promise<IDBDatabase> {
  const r = indexedDB.open(name, version);
  r.onupgradeneeded = (e) => upgrade(r.result, e.oldVersion);
  return req(r);
}

/** One readwrite transaction over `stores`: `fn` queues its requests, the promise waits for the commit. */
export async function write(db: IDBDatabase, stores: string | string[], fn: (tx: IDBTransaction) => void): Promise<void> {
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

/**
 * Opens the main database with every Runnel store (whichever half opens it first creates them all, so
 * the halves and `indexedDbStorage` share one database and one version scheme).
 */
export function openRunnelDb(options: IndexedDbStorageOptions): Promise<IDBDatabase> {
  // NB: the global indexedDB (Node tests install `fake-indexeddb/auto`).
  const appVersion = options.version ?? 1;
  return openDb(options.name ?? 'runnel', appVersion + RUNNEL_SCHEMA - 1, (raw, oldVersion) => {
    // Which schema the old version was in: a schema-1 database has no `states` store.
    const oldAppVersion = oldVersion > 0 && raw.objectStoreNames.contains(STATES) ? oldVersion - (RUNNEL_SCHEMA - 1) : oldVersion;
    for (const name of [OFFSETS, RECORDS, BATCHES, META, STATES]) {
      if (!raw.objectStoreNames.contains(name)) raw.createObjectStore(name, name === RECORDS || name === BATCHES ? { keyPath: 'id' } : undefined);
    }
    options.upgrade?.(raw, oldAppVersion);
  });
}
