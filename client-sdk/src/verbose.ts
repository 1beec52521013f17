/**
 * Whether the SDK's error and assertion messages are full sentences
 * (`#verbose` in package.json "imports"). This module is what Node, and any
 * build resolved with the `runnel-verbose` condition, loads: messages on.
 * Browser builds load terse.ts instead (issue 13's budgets): every message
 * site is written `VERBOSE ? \`…\` : ''`, so a bundler drops the text and the
 * error carries its documented code (RunnelError's message falls back to the
 * code's name; docs/protocol.md lists them).
 */
export const VERBOSE: boolean = true;
