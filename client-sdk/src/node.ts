/** @runnel/client/node — Node-only extras (uses node:fs). */
export { fileStorage } from './file-storage.ts';
