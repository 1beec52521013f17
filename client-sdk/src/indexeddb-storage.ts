/**
 * IndexedDB Storage (browser; `@runnel/client/indexeddb`): both halves on one database — the offsets and
 * states of indexeddb-offsets.ts and the outbox of indexeddb-outbox.ts (schema and versions:
 * indexeddb-database.ts). A consumer-only or producer-only app passes `indexedDbConsumerStorage()` or
 * `indexedDbProducerStorage()` instead and bundles only its half.
 */
import { openRunnelDb, type IndexedDbStorageOptions } from './indexeddb-database.ts';
import { offsetStore, stateStore } from './indexeddb-offsets.ts';
import { outboxPart } from './indexeddb-outbox.ts';
import type { Storage } from './storage.ts';

export type { IndexedDbStorageOptions } from './indexeddb-database.ts';

/**
 * @example const storage = await indexedDbStorage({ name: 'runnel-shop' });
 */
export async function indexedDbStorage(options: IndexedDbStorageOptions = {}): Promise<Storage> {
  const db = await openRunnelDb(options);
  const part = await outboxPart(db, options);
  return {
    offsets: offsetStore(db), states: stateStore(db), outbox: part.outbox, orphans: part.orphans,
    close() { db.close(); part.close(); },
  };
}
