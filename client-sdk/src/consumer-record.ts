/**
 * Consumer records: turning the records of a stored RecordBatch into the
 * objects handed to handlers. One decode per accepted record (key, JSON
 * value, headers); records the offset tracker rejects are never decoded.
 */
import type { BatchHeader, RecordView } from './codec/record-batch.ts';
import { forEachRecord, iterateBatches, readRecordHeaders } from './codec/record-batch.ts';
import { RunnelError } from './codec/error-codes.ts';
import { decodeText, decodeValue, type Topic } from './topic.ts';

const SKIP_CRC = { verifyCrc: false } as const;

export interface ConsumerRecord<T = unknown> {
  topic: string;
  partition: number;
  offset: number;
  timestampMs: number;
  key: string | null;
  value: T;
  headers: Record<string, string>;
}

/** A record, or the schema error of an invalid one (handled per the topic's `onInvalid`). */
export type DecodedEntry<T> = { offset: number; record: ConsumerRecord<T> | null; error: RunnelError | null };

function toRecord<T>(topic: Topic<unknown, T>, partition: number, bytes: Uint8Array, r: RecordView): DecodedEntry<T> {
  const headers: Record<string, string> = {};
  if (r.headerCount > 0) for (const h of readRecordHeaders(bytes, r) ?? []) headers[h.key] = h.value ? decodeText(h.value) : '';
  try {
    // NB: ranges, not subarrays: no typed-array view allocated per record.
    const value = r.valueLength < 0 ? decodeValue(topic, null) : decodeValue(topic, bytes, r.valueStart, r.valueStart + r.valueLength);
    const key = r.keyLength < 0 ? null : decodeText(bytes, r.keyStart, r.keyStart + r.keyLength);
    return { offset: r.offset, record: { topic: topic.name, partition, offset: r.offset, timestampMs: r.timestampMs, key, value, headers }, error: null };
  } catch (error) {
    return { offset: r.offset, record: null, error: error as RunnelError };
  }
}

/**
 * Decodes the records of concatenated `batches` that `accept(offset)` admits,
 * in offset order; batches wholly below `skipBelow` are not walked. CRCs are
 * checked unless `verifyCrc` is false (the structure always is).
 * Returns the entries, or the decode error (a corrupt frame).
 */
export function decodeAccepted<T>(topic: Topic<unknown, T>, partition: number, batches: Uint8Array, skipBelow: number, accept: (offset: number) => boolean, verifyCrc = true): { entries: DecodedEntry<T>[]; error: RunnelError | null } {
  const entries: DecodedEntry<T>[] = [];
  for (const item of iterateBatches(batches, verifyCrc ? undefined : SKIP_CRC)) {
    if (!item.ok) return { entries, error: new RunnelError(item.code, item.message) };
    const { at, header } = item.value as { at: number; header: BatchHeader };
    if (header.baseOffset + header.lastOffsetDelta < skipBelow) continue;
    const walked = forEachRecord(batches, at, header, (r) => {
      if (accept(r.offset)) entries.push(toRecord(topic, partition, batches, r));
    });
    if (!walked.ok) return { entries, error: new RunnelError(walked.code, walked.message) };
  }
  return { entries, error: null };
}
