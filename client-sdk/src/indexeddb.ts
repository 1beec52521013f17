/** @runnel/client/indexeddb — IndexedDB storage for browsers and workers (on `idb`). */
export { indexedDbStorage } from './indexeddb-storage.ts';
export type { IndexedDbStorageOptions } from './indexeddb-storage.ts';
