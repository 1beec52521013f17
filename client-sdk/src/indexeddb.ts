/**
 * @runnel/client/indexeddb — IndexedDB storage for browsers and workers (raw IndexedDB; `idb` loaded lazily for
 * transactional handlers): `indexedDbStorage` for `createClient`, or one half of it for a one-half app
 * (`indexedDbConsumerStorage` with `createConsumer`, `indexedDbProducerStorage` with `createProducer`).
 */
export { indexedDbStorage } from './indexeddb-storage.ts';
export { indexedDbConsumerStorage } from './indexeddb-offsets.ts';
export { indexedDbProducerStorage } from './indexeddb-outbox.ts';
export type { IndexedDbStorageOptions } from './indexeddb-database.ts';
