/**
 * Durable Streams header and offset logic, sans-IO (no node:*, time comes in
 * as `nowMs`). The endpoint (endpoint.ts) parses every request header through
 * here once; reference: docs/durable-streams.md.
 *
 * Offsets: `<position>_<generation>`, both 16 decimal digits; position = the
 * stream's record index, so string order is stream order. The generation is
 * minted when a stream is created (forks keep their source's, they share its
 * offset space); an offset of another generation past position 0 is one of a
 * deleted predecessor at the same URL and is answered 410 Gone (position 0 is
 * the start of every incarnation, so any generation may name it).
 */

export const POSITION_DIGITS = 16;
const GENERATION = /^\d{16}$/;
const OFFSET = /^(\d{16})_(\d{16})$/;

export function formatOffset(generation: string, position: number): string {
  return `${String(position).padStart(POSITION_DIGITS, '0')}_${generation}`;
}

/** A fresh generation from 8 random bytes. */
export function generationFrom(random: Uint8Array): string {
  let n = 0n;
  for (const b of random) n = (n << 8n) | BigInt(b);
  return (n % 10n ** 16n).toString().padStart(16, '0');
}

export type ParsedOffset =
  | { kind: 'start' }
  | { kind: 'now' }
  | { kind: 'position'; generation: string; position: number }
  | { kind: 'invalid'; reason: string };

export function parseOffset(value: string | undefined): ParsedOffset {
  if (value === undefined || value === '-1') return { kind: 'start' };
  if (value === 'now') return { kind: 'now' };
  const m = OFFSET.exec(value);
  if (!m) return { kind: 'invalid', reason: `offset '${value.slice(0, 80)}' is not an offset this server issued` };
  const position = Number(m[1]);
  if (!Number.isSafeInteger(position)) return { kind: 'invalid', reason: 'offset position out of range' };
  return { kind: 'position', generation: m[2], position };
}

export function isGeneration(value: string): boolean {
  return GENERATION.test(value);
}

/** `Stream-Closed` counts only when exactly `true`, any case; other values are as if absent. */
export function isTrueHeader(value: string | null | undefined): boolean {
  return value != null && value.trim().toLowerCase() === 'true';
}

/** Decimal, no sign, no leading zero (except "0"), no fraction or exponent. */
const DECIMAL = /^(0|[1-9]\d*)$/;

export function parseNonNegativeInt(value: string): number | null {
  if (!DECIMAL.test(value)) return null;
  const n = Number(value);
  return Number.isSafeInteger(n) ? n : null;
}

/** RFC 3339 date-time with a zone (Z or ±hh:mm). */
const RFC3339 = /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/;

export type Expiry = { ttlSeconds?: number; expiresAtMs?: number };

/** Stream-TTL / Stream-Expires-At of a create; both at once is refused (400). */
export function parseExpiry(ttl: string | null, expiresAt: string | null): { ok: true; value: Expiry } | { ok: false; reason: string } {
  if (ttl !== null && expiresAt !== null) return { ok: false, reason: 'Stream-TTL and Stream-Expires-At are exclusive' };
  if (ttl !== null) {
    const n = parseNonNegativeInt(ttl.trim());
    if (n === null) return { ok: false, reason: `Stream-TTL must be a non-negative decimal integer, got '${ttl.slice(0, 40)}'` };
    return { ok: true, value: { ttlSeconds: n } };
  }
  if (expiresAt !== null) {
    const v = expiresAt.trim();
    const ms = RFC3339.test(v) ? Date.parse(v) : NaN;
    if (!Number.isFinite(ms)) return { ok: false, reason: `Stream-Expires-At must be an RFC 3339 timestamp, got '${expiresAt.slice(0, 60)}'` };
    return { ok: true, value: { expiresAtMs: ms } };
  }
  return { ok: true, value: {} };
}

export interface ProducerHeaders { id: string; epoch: number; seq: number }

/** All three producer headers or none (400 otherwise). */
export function parseProducer(id: string | null, epoch: string | null, seq: string | null): { ok: true; value: ProducerHeaders | null } | { ok: false; reason: string } {
  if (id === null && epoch === null && seq === null) return { ok: true, value: null };
  if (id === null || epoch === null || seq === null) return { ok: false, reason: 'Producer-Id, Producer-Epoch and Producer-Seq go together' };
  if (id.length === 0 || id.length > 256) return { ok: false, reason: 'Producer-Id must be 1..256 characters' };
  const e = parseNonNegativeInt(epoch.trim());
  const s = parseNonNegativeInt(seq.trim());
  if (e === null || s === null) return { ok: false, reason: 'Producer-Epoch and Producer-Seq must be non-negative integers ≤ 2^53−1' };
  return { ok: true, value: { id, epoch: e, seq: s } };
}

export interface ProducerState { epoch: number; lastSeq: number }

export type ProducerVerdict =
  | { kind: 'accept' }
  | { kind: 'duplicate'; lastSeq: number }
  | { kind: 'stale-epoch'; currentEpoch: number }
  | { kind: 'bad-epoch-start' }
  | { kind: 'gap'; expected: number; received: number };

/** The protocol's producer validation (epoch fencing, then per-epoch sequence). */
export function checkProducer(state: ProducerState | undefined, p: ProducerHeaders): ProducerVerdict {
  if (state === undefined) return p.seq === 0 ? { kind: 'accept' } : { kind: 'gap', expected: 0, received: p.seq };
  if (p.epoch < state.epoch) return { kind: 'stale-epoch', currentEpoch: state.epoch };
  if (p.epoch > state.epoch) return p.seq === 0 ? { kind: 'accept' } : { kind: 'bad-epoch-start' };
  if (p.seq <= state.lastSeq) return { kind: 'duplicate', lastSeq: state.lastSeq };
  if (p.seq === state.lastSeq + 1) return { kind: 'accept' };
  return { kind: 'gap', expected: state.lastSeq + 1, received: p.seq };
}

/** Media type without parameters, lowercased: `Application/JSON; charset=utf-8` → `application/json`. */
export function mediaType(contentType: string | null | undefined): string {
  return (contentType ?? '').split(';')[0].trim().toLowerCase();
}

export function isJsonType(contentType: string): boolean {
  return mediaType(contentType) === 'application/json';
}

/** SSE carries text/* and JSON as text, everything else base64. */
export function sseIsText(contentType: string): boolean {
  const t = mediaType(contentType);
  return t.startsWith('text/') || t === 'application/json';
}

/**
 * JSON mode: the messages of a body, one array level flattened. Each message
 * is returned as its canonical JSON text (re-serialized, so a stored message
 * is always one valid JSON value). An empty array is refused on append.
 */
export function jsonMessages(body: Uint8Array, allowEmpty: boolean): { ok: true; value: string[] } | { ok: false; reason: string } {
  let parsed: unknown;
  try {
    parsed = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(body));
  } catch {
    return { ok: false, reason: 'body is not valid UTF-8 JSON' };
  }
  if (Array.isArray(parsed)) {
    if (parsed.length === 0 && !allowEmpty) return { ok: false, reason: 'an empty JSON array appends nothing' };
    return { ok: true, value: parsed.map((m) => JSON.stringify(m)) };
  }
  return { ok: true, value: [JSON.stringify(parsed)] };
}

/** Cursor intervals: 20 s from 2024-10-09T00:00:00Z (the protocol's defaults). */
const CURSOR_EPOCH_MS = Date.UTC(2024, 9, 9);
const CURSOR_INTERVAL_MS = 20_000;

/**
 * The cursor of a live response: the current interval, or (when the client's
 * cursor is not behind it) strictly more than the client's, so a CDN never
 * loops on one cached empty answer. `jitter` is 1..3600 s worth of intervals.
 */
export function nextCursor(nowMs: number, clientCursor: string | undefined, random: () => number): string {
  const interval = Math.floor((nowMs - CURSOR_EPOCH_MS) / CURSOR_INTERVAL_MS);
  const client = clientCursor !== undefined && /^\d{1,15}$/.test(clientCursor) ? Number(clientCursor) : -1;
  if (client < interval) return String(interval);
  const jitterSeconds = 1 + Math.floor(random() * 3600);
  return String(client + Math.max(1, Math.ceil((jitterSeconds * 1000) / CURSOR_INTERVAL_MS)));
}

/** ETag of a read: which stream incarnation, the range, and whether the stream was closed (so closing changes it). */
export function etagOf(streamId: string, start: string, end: string, closed: boolean): string {
  return `"${streamId}:${start}:${end}${closed ? ':c' : ''}"`;
}

export function ifNoneMatchHits(header: string | null, etag: string): boolean {
  if (header === null) return false;
  return header.split(',').some((t) => {
    const v = t.trim();
    return v === etag || v === `W/${etag}` || v === '*';
  });
}

/**
 * A payload as SSE `data:` lines. Every line break (CRLF, CR or LF) starts a
 * new `data:` line, so a payload can never end the event or start another
 * (CR alone is a line end to SSE parsers). A line starting with a space gets
 * one more, which the parser strips.
 */
export function sseDataLines(payload: string): string {
  let out = '';
  for (const line of payload.split(/\r\n|\r|\n/)) out += line.startsWith(' ') ? `data: ${line}\n` : `data:${line}\n`;
  return out;
}

/** "Stream path" from a URL pathname under the mount point; null when outside or empty. */
export function streamPathOf(pathname: string, mount: string): string | null {
  if (!pathname.startsWith(mount)) return null;
  const rest = pathname.slice(mount.length);
  if (rest.length === 0) return null;
  try {
    return decodeURIComponent(rest);
  } catch {
    return null;
  }
}

/** The expiry instant of a stream's metadata at `lastAccessMs`, or undefined for none. */
export function expiresAtOf(meta: { ttlSeconds?: number; expiresAtMs?: number }, lastAccessMs: number): number | undefined {
  if (meta.expiresAtMs !== undefined) return meta.expiresAtMs;
  if (meta.ttlSeconds !== undefined) return lastAccessMs + meta.ttlSeconds * 1000;
  return undefined;
}
