/**
 * The HTTP record encoding (docs/http.md, "HTTP record encoding" in the broker
 * contract): JSON/NDJSON produce bodies → one RecordBatch v2 per partition,
 * and stored batches → JSON records for long-poll and SSE reads.
 *
 * Sans-IO: time comes in as `nowMs`; no node:* imports.
 * - A value is stored as the UTF-8 of `JSON.stringify(value)`, a key as UTF-8
 *   text, header values as UTF-8. Reads give `value` back as parsed JSON when
 *   its bytes are valid JSON UTF-8, else as a string; `key` as string|null.
 * - Partition: explicit `partition`, else murmur2 of the key (Kafka's
 *   partitioner, `partitionForKey`), else the request's keyless partition.
 * Invariant: reads never return offsets below the requested one or at/above
 * the high watermark.
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
export type ProduceRecord = z.infer<typeof ProduceRecordSchema>;

export const ProduceBodySchema = z.strictObject({ records: z.array(ProduceRecordSchema).min(1) });

/** A record as the HTTP API returns it. */
export interface JsonRecord {
  offset: number;
  timestamp: number;
  key: string | null;
  value: unknown;
  headers: Record<string, string | null>;
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

function fail<T>(code: 'INVALID_REQUEST' | 'MESSAGE_TOO_LARGE' | 'UNKNOWN_TOPIC_OR_PARTITION', message: string): Decoded<T> {
  return { ok: false, code, message };
}

function checkRecords(input: unknown, limits: Limits): Decoded<ProduceRecord[]> {
  const parsed = ProduceBodySchema.safeParse(input);
  if (!parsed.success) {
    const records = (input as { records?: unknown } | null)?.records;
    if (Array.isArray(records) && records.length > limits.maxHttpRecords) return tooManyRecords(records.length, limits);
    return fail('INVALID_REQUEST', parsed.error.issues.map((i) => `${i.path.join('.') || 'body'}: ${i.message}`).join('; '));
  }
  const records = parsed.data.records;
  if (records.length > limits.maxHttpRecords) return tooManyRecords(records.length, limits);
  for (let i = 0; i < records.length; i++) {
    const headers = records[i].headers;
    if (headers !== undefined && Object.keys(headers).length > limits.maxHeadersPerRecord) {
      return fail('MESSAGE_TOO_LARGE', `records.${i}.headers: more than maxHeadersPerRecord (${limits.maxHeadersPerRecord}) headers`);
    }
  }
  return { ok: true, value: records };
}

function tooManyRecords(count: number, limits: Limits): Decoded<never> {
  return fail('MESSAGE_TOO_LARGE', `${count} records exceed maxHttpRecords (${limits.maxHttpRecords}) per request`);
}

function parseNdjson(text: string, limits: Limits): Decoded<ProduceRecord[]> {
  const lines = text.split('\n').filter((l) => l.trim() !== '');
  if (lines.length > limits.maxHttpRecords) return tooManyRecords(lines.length, limits);
  const records: unknown[] = [];
  for (let i = 0; i < lines.length; i++) {
    try {
      records.push(JSON.parse(lines[i]));
    } catch (e) {
      return fail('INVALID_REQUEST', `line ${i + 1} is not valid JSON: ${(e as Error).message}`);
    }
  }
  return checkRecords({ records }, limits);
}

/**
 * Parses a JSON, NDJSON or text/plain (beacon: JSON, else NDJSON) produce body.
 * Never throws on bad input.
 */
export function parseProduceBody(format: Exclude<BodyFormat, 'batch'>, body: Uint8Array, limits: Limits): Decoded<ProduceRecord[]> {
  let text: string;
  try {
    text = strictDecoder.decode(body);
  } catch {
    return fail('INVALID_REQUEST', 'body is not valid UTF-8');
  }
  if (format === 'ndjson') return parseNdjson(text, limits);
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    if (format === 'text' && text.includes('\n')) return parseNdjson(text, limits);
    return fail('INVALID_REQUEST', `body is not valid JSON: ${(e as Error).message}`);
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

function valueOf(bytes: Uint8Array, start: number, length: number): unknown {
  if (length < 0) return null;
  const view = bytes.subarray(start, start + length);
  let text: string;
  try {
    text = strictDecoder.decode(view);
  } catch {
    return lossyDecoder.decode(view);
  }
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/**
 * Decodes stored batches into JSON records with `fromOffset <= offset < highWatermark`,
 * at most `maxRecords`. `lastOffset` is the last returned offset (−1 if none).
 */
export function recordsFromBatches(bytes: Uint8Array, fromOffset: number, maxRecords: number, highWatermark: number, maxBatchBytes?: number): Decoded<{ records: JsonRecord[]; lastOffset: number }> {
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
      records.push({
        offset: r.offset,
        timestamp: r.timestampMs,
        key: r.keyLength < 0 ? null : lossyDecoder.decode(bytes.subarray(r.keyStart, r.keyStart + r.keyLength)),
        value: valueOf(bytes, r.valueStart, r.valueLength),
        headers,
      });
      lastOffset = r.offset;
    });
    if (!walked.ok) return walked;
  }
  return { ok: true, value: { records, lastOffset } };
}
