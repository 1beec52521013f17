/**
 * The records of the internal topic `__consumer_offsets` (sans-IO codec):
 * one record per commit request, so a commit is all-or-nothing like the
 * file store's one line (Kafka writes one record per partition inside one
 * batch; one record is the same atomicity with one key).
 *
 * Record layout:
 *   - commit:    key = group id (UTF-8), value = JSON `{"v":1,"o":[[topic, partition, offset, metadata], …]}`
 *   - tombstone: key = null,             value = JSON `{"v":1,"deleteTopic":"<topic>"}`
 * JSON because commits are control-plane traffic (a few per second per
 * member) and the log stays readable with `runnel consume`; arrays, not
 * objects, so a commit of many partitions is not dominated by field names.
 *
 * Invariant: `decodeOffsetRecord` never throws: a record it does not
 * understand (another version, bytes a client forged) is `null` and is
 * skipped by replay, never half-applied.
 */
import { encodeRecordBatch, type CommittedOffset } from '@runnel/client/codec';

/** Version of the value layout; a replay skips records of other versions. */
export const OFFSET_RECORD_VERSION = 1;

export type OffsetRecord =
  | { kind: 'commit'; group: string; offsets: CommittedOffset[] }
  | { kind: 'deleteTopic'; topic: string };

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });

/** The value bytes and key of one record. */
export function encodeOffsetRecord(r: OffsetRecord): { key: Uint8Array | null; value: Uint8Array } {
  if (r.kind === 'deleteTopic') return { key: null, value: encoder.encode(JSON.stringify({ v: OFFSET_RECORD_VERSION, deleteTopic: r.topic })) };
  const o = r.offsets.map((c) => [c.topic, c.partition, c.offset, c.metadata ?? '']);
  return { key: encoder.encode(r.group), value: encoder.encode(JSON.stringify({ v: OFFSET_RECORD_VERSION, o })) };
}

/**
 * One RecordBatch holding the record (the bytes appended to the partition).
 * `nowMs` is the record timestamp (retention of the internal topic counts from it).
 */
export function encodeOffsetBatch(r: OffsetRecord, nowMs: number): Uint8Array {
  const { key, value } = encodeOffsetRecord(r);
  return encodeRecordBatch({ records: [{ key, value, timestampMs: nowMs }] });
}

/** The record, or null when it is not a record of this version (skipped by replay). */
export function decodeOffsetRecord(key: Uint8Array | null, value: Uint8Array | null): OffsetRecord | null {
  if (value === null) return null;
  let parsed: unknown;
  try {
    parsed = JSON.parse(decoder.decode(value));
  } catch {
    return null;
  }
  if (typeof parsed !== 'object' || parsed === null || (parsed as { v?: unknown }).v !== OFFSET_RECORD_VERSION) return null;
  const body = parsed as { o?: unknown; deleteTopic?: unknown };
  if (key === null) return typeof body.deleteTopic === 'string' ? { kind: 'deleteTopic', topic: body.deleteTopic } : null;
  let group: string;
  try {
    group = decoder.decode(key);
  } catch {
    return null;
  }
  if (!Array.isArray(body.o)) return null;
  const offsets: CommittedOffset[] = [];
  for (const entry of body.o as unknown[]) {
    if (!Array.isArray(entry) || entry.length !== 4) return null;
    const [topic, partition, offset, metadata] = entry as unknown[];
    if (typeof topic !== 'string' || typeof metadata !== 'string') return null;
    if (!Number.isSafeInteger(partition) || (partition as number) < 0 || !Number.isSafeInteger(offset) || (offset as number) < 0) return null;
    offsets.push({ topic, partition: partition as number, offset: offset as number, metadata });
  }
  return { kind: 'commit', group, offsets };
}
