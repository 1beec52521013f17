/**
 * `#verbose` for browser builds: messages off, errors carry their code only
 * (see verbose.ts). A bundler inlines the constant and drops every message
 * text. Build with the `runnel-verbose` export condition to keep them.
 */
export const VERBOSE: boolean = false;
