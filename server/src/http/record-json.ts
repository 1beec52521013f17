/**
 * The HTTP record encoding (docs/http.md, "HTTP record encoding" in the broker
 * contract): JSON/NDJSON produce bodies → one RecordBatch v2 per partition,
 * and stored batches → JSON records for long-poll and SSE reads.
 *
 * Sans-IO: time comes in as `nowMs`; no node:* imports.
 * - A value is stored as the UTF-8 of `JSON.stringify(value)`, a key as UTF-8
 *   text, header values as UTF-8. Reads give `value` back as parsed JSON when
 *   its bytes are UTF-8 JSON within `maxJsonDepth`/`maxJsonStringBytes` (what
 *   an HTTP produce accepts), else degraded: `valueEncoding: "text"` (the
 *   UTF-8 text) or `"base64"` (not UTF-8); `key` as string|null.
 * - JSON nesting and string lengths are measured by `scanJson`, one iterative
 *   pass over the bytes, before JSON.parse: JSON.parse is iterative in V8, but
 *   JSON.stringify (our encoding, Hono's `c.json`, SSE events) recurses and
 *   overflows the stack a few thousand levels down. Nothing recursive ever
 *   sees a value deeper than maxJsonDepth.
 * - Partition: explicit `partition`, else murmur2 of the key (Kafka's
 *   partitioner, `partitionForKey`), else the request's keyless partition.
 * Invariant: reads never return offsets below the requested one or at/above
 * the high watermark, and never fail as a whole because of one record's value.
 * NB: header names keep any name, `__proto__` included: header maps are
 * null-prototype objects built from own entries (zod's record drops `__proto__`).
 * NB: JSON bodies are per-record work by nature; the binary RecordBatch body
 * (application/vnd.runnel.recordbatch) is the path without it.
 */
import { z } from 'zod';
import { encodeRecordBatch, forEachRecord, iterateBatches, partitionForKey, readRecordHeaders, type Decoded, type RecordInput } from '@runnel/client/codec';
import type { Limits } from '../limits.ts';

const encoder = new TextEncoder();
const strictDecoder = new TextDecoder('utf-8', { fatal: true });
const lossyDecoder = new TextDecoder('utf-8');

export const ProduceRecordSchema = z.strictObject({
  key: z.string().nullable().optional(),
  value: z.unknown(),
  headers: z.record(z.string(), z.string()).optional(),
  partition: z.number().int().min(0).optional(),
}).superRefine((r, ctx) => {
  if (r.value === undefined) ctx.addIssue({ code: 'custom', path: ['value'], message: 'value is required (any JSON value)' });
});
/** A validated produce record; `headers` is a null-prototype map holding every name of the body. */
export type ProduceRecord = z.infer<typeof ProduceRecordSchema>;

export const ProduceBodySchema = z.strictObject({ records: z.array(ProduceRecordSchema).min(1) });

/**
 * How a read returns a value that is not JSON within the limits (absent: `value` is the stored JSON).
 * `text`: the stored bytes are UTF-8 but not JSON, or nested deeper than maxJsonDepth, or hold a
 * string over maxJsonStringBytes; `value` is that text. `base64`: not UTF-8; `value` is their base64.
 */
export type ValueEncoding = 'text' | 'base64';

/** A record as the HTTP API returns it. */
export interface JsonRecord {
  offset: number;
  timestamp: number;
  key: string | null;
  value: unknown;
  headers: Record<string, string | null>;
  valueEncoding?: ValueEncoding;
}

export type BodyFormat = 'json' | 'ndjson' | 'text' | 'batch';

/** Picks the produce body format from its Content-Type; null = unsupported. */
export function bodyFormatOf(contentType: string | undefined): BodyFormat | null {
  const media = (contentType ?? '').split(';')[0].trim().toLowerCase();
  if (media === 'application/json' || media.endsWith('+json')) return 'json';
  if (media === 'application/x-ndjson' || media === 'application/jsonl' || media === 'application/x-jsonlines') return 'ndjson';
  // navigator.sendBeacon(url, string) sends text/plain; a typeless Blob sends no Content-Type.
  if (media === 'text/plain' || media === '') return 'text';
  if (media === 'application/vnd.runnel.recordbatch' || media === 'application/octet-stream') return 'batch';
  return null;
}

type ProduceErrorCode = 'INVALID_REQUEST' | 'INVALID_RECORD' | 'MESSAGE_TOO_LARGE' | 'UNKNOWN_TOPIC_OR_PARTITION';

function fail<T>(code: ProduceErrorCode, message: string): Decoded<T> {
  return { ok: false, code, message };
}

// ---- JSON shape scan ----

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_ARRAY = 0x5b;
const CLOSE_ARRAY = 0x5d;
const OPEN_OBJECT = 0x7b;
const CLOSE_OBJECT = 0x7d;
const LINE_FEED = 0x0a;

/** Levels a value sits below the top of `{"records":[{"value":…}]}`, and of an NDJSON line `{"value":…}`. */
const BODY_VALUE_DEPTH = 3;
const LINE_VALUE_DEPTH = 1;

export type JsonScan = { ok: true; depth: number } | { ok: false; exceeded: 'maxJsonDepth' | 'maxJsonStringBytes' };

/**
 * One pass over JSON text bytes, without recursion or allocation: the deepest array/object nesting
 * and whether a string (escapes included, quotes excluded) is longer than `maxStringBytes`; stops at
 * the first bracket past `maxDepth`. It does not validate: JSON.parse does that afterwards, and for
 * valid JSON `depth` is exact. UTF-8 continuation bytes are never ASCII, so bytes can be scanned as is.
 * @example scanJson(new TextEncoder().encode('{"a":[1]}'), 64, 1024) // { ok: true, depth: 2 }
 */
export function scanJson(bytes: Uint8Array, maxDepth: number, maxStringBytes: number): JsonScan {
  let depth = 0;
  let deepest = 0;
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i];
    if (b === QUOTE) {
      const end = closingQuote(bytes, i + 1);
      if (end - i - 1 > maxStringBytes) return { ok: false, exceeded: 'maxJsonStringBytes' };
      i = end;
    } else if (b === OPEN_ARRAY || b === OPEN_OBJECT) {
      if (++depth > maxDepth) return { ok: false, exceeded: 'maxJsonDepth' };
      if (depth > deepest) deepest = depth;
    } else if (b === CLOSE_ARRAY || b === CLOSE_OBJECT) {
      depth--;
    }
  }
  return { ok: true, depth: deepest };
}

/** Index of the quote closing a string whose contents start at `from` (bytes.length if unterminated). */
function closingQuote(bytes: Uint8Array, from: number): number {
  for (let at = from; ; at++) {
    at = bytes.indexOf(QUOTE, at);
    if (at < 0) return bytes.length;
    // Escaped iff an odd number of backslashes precede it (walks only back to the previous quote: linear overall).
    let slashes = 0;
    while (at - slashes - 1 >= from && bytes[at - slashes - 1] === BACKSLASH) slashes++;
    if (slashes % 2 === 0) return at;
  }
}

function overLimit(exceeded: 'maxJsonDepth' | 'maxJsonStringBytes', where: string, limits: Limits): Decoded<never> {
  return exceeded === 'maxJsonDepth'
    ? fail('INVALID_RECORD', `${where}: a value nests arrays/objects deeper than maxJsonDepth (${limits.maxJsonDepth})`)
    : fail('INVALID_RECORD', `${where}: a JSON string is longer than maxJsonStringBytes (${limits.maxJsonStringBytes})`);
}

// ---- produce bodies ----

/** `input` is what JSON.parse returned; the zod result loses `__proto__` header names, so headers come from it. */
function checkRecords(input: unknown, limits: Limits): Decoded<ProduceRecord[]> {
  const parsed = ProduceBodySchema.safeParse(input);
  if (!parsed.success) {
    const records = (input as { records?: unknown } | null)?.records;
    if (Array.isArray(records) && records.length > limits.maxHttpRecords) return tooManyRecords(records.length, limits);
    return fail('INVALID_REQUEST', parsed.error.issues.map((i) => `${i.path.join('.') || 'body'}: ${i.message}`).join('; '));
  }
  const records = parsed.data.records;
  if (records.length > limits.maxHttpRecords) return tooManyRecords(records.length, limits);
  const raw = (input as { records: { headers?: Record<string, unknown> }[] }).records;
  for (let i = 0; i < records.length; i++) {
    const source = raw[i].headers;
    if (source === undefined) continue;
    const headers: Record<string, string> = Object.create(null);
    const entries = Object.entries(source);
    if (entries.length > limits.maxHeadersPerRecord) {
      return fail('MESSAGE_TOO_LARGE', `records.${i}.headers: more than maxHeadersPerRecord (${limits.maxHeadersPerRecord}) headers`);
    }
    for (const [name, value] of entries) {
      if (typeof value !== 'string') return fail('INVALID_REQUEST', `records.${i}.headers.${name}: Invalid input: expected string, received ${value === null ? 'null' : typeof value}`);
      headers[name] = value;
    }
    records[i].headers = headers;
  }
  return { ok: true, value: records };
}

function tooManyRecords(count: number, limits: Limits): Decoded<never> {
  return fail('MESSAGE_TOO_LARGE', `${count} records exceed maxHttpRecords (${limits.maxHttpRecords}) per request`);
}

function isBlank(line: Uint8Array): boolean {
  for (const b of line) if (b !== 0x20 && b !== 0x09 && b !== 0x0d) return false;
  return true;
}

/** One record object per line (LF, optional CR), blank lines skipped; each line is scanned before it is parsed. */
function parseNdjson(body: Uint8Array, limits: Limits): Decoded<ProduceRecord[]> {
  const lines: { number: number; bytes: Uint8Array }[] = [];
  for (let start = 0, number = 1; start < body.length; number++) {
    const newline = body.indexOf(LINE_FEED, start);
    const end = newline < 0 ? body.length : newline;
    const bytes = body.subarray(start, end);
    if (!isBlank(bytes)) lines.push({ number, bytes });
    start = end + 1;
  }
  if (lines.length > limits.maxHttpRecords) return tooManyRecords(lines.length, limits);
  const records: unknown[] = [];
  for (const { number, bytes } of lines) {
    const scan = scanJson(bytes, limits.maxJsonDepth + LINE_VALUE_DEPTH, limits.maxJsonStringBytes);
    if (!scan.ok) return overLimit(scan.exceeded, `line ${number}`, limits);
    let text: string;
    try {
      text = strictDecoder.decode(bytes);
    } catch {
      return fail('INVALID_REQUEST', `line ${number} is not valid UTF-8`);
    }
    try {
      records.push(JSON.parse(text));
    } catch (e) {
      return fail('INVALID_REQUEST', `line ${number} is not valid JSON: ${(e as Error).message}`);
    }
  }
  return checkRecords({ records }, limits);
}

/** A beacon body holding one record object rather than the `{records:[...]}` form (a record has no `records` field). */
function isOneRecord(json: unknown): json is object {
  return typeof json === 'object' && json !== null && !Array.isArray(json) && !Object.hasOwn(json, 'records');
}

/**
 * Parses a JSON (`{records:[...]}`), NDJSON or text/plain beacon produce body. A beacon is the
 * `{records:[...]}` form when it is one JSON object with a `records` field, one record when it is
 * one JSON object without (a one-line NDJSON body), else NDJSON. Nesting past maxJsonDepth and
 * strings past maxJsonStringBytes are INVALID_RECORD, found before JSON.parse runs.
 * Never throws on bad input.
 */
export function parseProduceBody(format: Exclude<BodyFormat, 'batch'>, body: Uint8Array, limits: Limits): Decoded<ProduceRecord[]> {
  if (format === 'ndjson') return parseNdjson(body, limits);
  // The loosest bound of the forms; a one-record beacon is held to its own below.
  const scan = scanJson(body, limits.maxJsonDepth + BODY_VALUE_DEPTH, limits.maxJsonStringBytes);
  if (!scan.ok) return overLimit(scan.exceeded, 'body', limits);
  let text: string;
  try {
    text = strictDecoder.decode(body);
  } catch {
    return fail('INVALID_REQUEST', 'body is not valid UTF-8');
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    if (format === 'text' && text.includes('\n')) return parseNdjson(body, limits);
    return fail('INVALID_REQUEST', `body is not valid JSON: ${(e as Error).message}`);
  }
  if (format === 'text' && isOneRecord(json)) {
    if (scan.depth > limits.maxJsonDepth + LINE_VALUE_DEPTH) return overLimit('maxJsonDepth', 'body', limits);
    return checkRecords({ records: [json] }, limits);
  }
  return checkRecords(json, limits);
}

/** One RecordBatch to append, and which request records (by index) it holds, in order. */
export interface PlannedBatch {
  partition: number;
  batch: Uint8Array;
  indexes: number[];
}

function toRecordInput(r: ProduceRecord, nowMs: number): RecordInput {
  const headers = r.headers === undefined ? undefined : Object.entries(r.headers).map(([key, v]) => ({ key, value: encoder.encode(v) }));
  return {
    key: r.key == null ? null : encoder.encode(r.key),
    value: encoder.encode(JSON.stringify(r.value)),
    ...(headers === undefined ? {} : { headers }),
    timestampMs: nowMs,
  };
}

/** Encodes `indexes` as batches no larger than the limits (halving when a batch is too big). */
function encodeSplit(inputs: RecordInput[], indexes: number[], partition: number, limits: Limits, nowMs: number, out: PlannedBatch[]): Decoded<null> {
  if (indexes.length > limits.maxRecordsPerBatch) {
    const half = Math.ceil(indexes.length / 2);
    const first = encodeSplit(inputs, indexes.slice(0, half), partition, limits, nowMs, out);
    return first.ok ? encodeSplit(inputs, indexes.slice(half), partition, limits, nowMs, out) : first;
  }
  const batch = encodeRecordBatch({ baseTimestamp: nowMs, records: indexes.map((i) => inputs[i]) });
  if (batch.byteLength <= limits.maxBatchBytes) {
    out.push({ partition, batch, indexes });
    return { ok: true, value: null };
  }
  if (indexes.length === 1) return fail('MESSAGE_TOO_LARGE', `record ${indexes[0]} encodes to ${batch.byteLength} bytes, over maxBatchBytes (${limits.maxBatchBytes})`);
  const half = Math.ceil(indexes.length / 2);
  const first = encodeSplit(inputs, indexes.slice(0, half), partition, limits, nowMs, out);
  return first.ok ? encodeSplit(inputs, indexes.slice(half), partition, limits, nowMs, out) : first;
}

/**
 * Assigns partitions and encodes one batch per partition (more only when a
 * batch would pass maxBatchBytes or maxRecordsPerBatch).
 * @example planBatches([{ value: { a: 1 } }], 3, 0, Date.now(), limits)
 */
export function planBatches(records: ProduceRecord[], partitionCount: number, keylessPartition: number, nowMs: number, limits: Limits): Decoded<PlannedBatch[]> {
  const byPartition = new Map<number, number[]>();
  const inputs: RecordInput[] = new Array(records.length);
  for (let i = 0; i < records.length; i++) {
    const r = records[i];
    inputs[i] = toRecordInput(r, nowMs);
    const partition = r.partition ?? (inputs[i].key != null ? partitionForKey(inputs[i].key!, partitionCount) : keylessPartition);
    if (partition >= partitionCount) return fail('UNKNOWN_TOPIC_OR_PARTITION', `records.${i}.partition: partition ${partition} does not exist (topic has ${partitionCount})`);
    const list = byPartition.get(partition);
    if (list) list.push(i);
    else byPartition.set(partition, [i]);
  }
  const out: PlannedBatch[] = [];
  for (const [partition, indexes] of byPartition) {
    const encoded = encodeSplit(inputs, indexes, partition, limits, nowMs, out);
    if (!encoded.ok) return encoded;
  }
  return { ok: true, value: out };
}

/** Base64 of bytes without node:* (degraded values only, so not on any hot path). */
function base64Of(bytes: Uint8Array): string {
  let binary = '';
  for (let at = 0; at < bytes.length; at += 0x8000) binary += String.fromCharCode(...bytes.subarray(at, at + 0x8000));
  return btoa(binary);
}

/** Sets `record.value` from the stored bytes: JSON within the limits, else a degraded form (ValueEncoding). */
function setValue(record: JsonRecord, bytes: Uint8Array, start: number, length: number, limits: JsonLimits): void {
  if (length < 0) return; // a null value stays JSON null
  const view = bytes.subarray(start, start + length);
  let text: string;
  try {
    text = strictDecoder.decode(view);
  } catch {
    record.value = base64Of(view);
    record.valueEncoding = 'base64';
    return;
  }
  if (scanJson(view, limits.maxJsonDepth, limits.maxJsonStringBytes).ok) {
    try {
      record.value = JSON.parse(text);
      return;
    } catch {
      // Not JSON (a WebSocket or binary producer stored other bytes): returned as text, below.
    }
  }
  record.value = text;
  record.valueEncoding = 'text';
}

/** The limits that decide whether a stored value is returned as JSON. */
export type JsonLimits = Pick<Limits, 'maxJsonDepth' | 'maxJsonStringBytes'>;

/**
 * Decodes stored batches into JSON records with `fromOffset <= offset < highWatermark`,
 * at most `maxRecords`. `lastOffset` is the last returned offset (−1 if none). A value that is
 * not JSON within `limits` is returned degraded (`valueEncoding`), never failing the read.
 */
export function recordsFromBatches(bytes: Uint8Array, fromOffset: number, maxRecords: number, highWatermark: number, limits: JsonLimits, maxBatchBytes?: number): Decoded<{ records: JsonRecord[]; lastOffset: number }> {
  const records: JsonRecord[] = [];
  let lastOffset = -1;
  for (const item of iterateBatches(bytes, maxBatchBytes === undefined ? undefined : { maxBatchBytes })) {
    if (!item.ok) return item;
    const { at, header } = item.value;
    if (header.baseOffset + header.lastOffsetDelta < fromOffset) continue;
    if (header.baseOffset >= highWatermark || records.length >= maxRecords) break;
    const walked = forEachRecord(bytes, at, header, (r) => {
      if (r.offset < fromOffset || r.offset >= highWatermark || records.length >= maxRecords) return;
      // Null prototype: a header named `__proto__` must stay a plain key.
      const headers: Record<string, string | null> = Object.create(null);
      if (r.headerCount > 0) {
        for (const h of readRecordHeaders(bytes, r) ?? []) headers[h.key] = h.value === null ? null : lossyDecoder.decode(h.value);
      }
      const record: JsonRecord = {
        offset: r.offset,
        timestamp: r.timestampMs,
        key: r.keyLength < 0 ? null : lossyDecoder.decode(bytes.subarray(r.keyStart, r.keyStart + r.keyLength)),
        value: null,
        headers,
      };
      setValue(record, bytes, r.valueStart, r.valueLength, limits);
      records.push(record);
      lastOffset = r.offset;
    });
    if (!walked.ok) return walked;
  }
  return { ok: true, value: { records, lastOffset } };
}
