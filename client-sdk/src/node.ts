/** @runnel/client/node — Node-only extras (uses node:fs). */
export { fileStorage, isProcessAlive } from './file-storage.ts';
