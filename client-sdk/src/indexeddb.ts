/** @runnel/client/indexeddb — IndexedDB storage for browsers and workers (raw IndexedDB; `idb` loaded lazily for transactional handlers). */
export { indexedDbStorage } from './indexeddb-storage.ts';
export type { IndexedDbStorageOptions } from './indexeddb-storage.ts';
