/** `#native-crc32c` in browser builds: none (the pure-JS CRC-32C is used; the bundler drops the branch). */
export const nativeCrc32c: ((bytes: Uint8Array, start: number, end: number) => number) | null = null;
