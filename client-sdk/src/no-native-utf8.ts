/** `#native-utf8` for browser builds: none; TextDecoder decodes every range (a bundler drops the other branch). */
export const utf8Slice: ((b: Uint8Array, start: number, end: number) => string) | null = null;
