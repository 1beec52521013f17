/**
 * Idempotent producer state of one partition (Kafka KIP-98,
 * ProducerStateManager): per producer id its epoch and the sequences and
 * offsets of its last five batches. Pure: `check` decides, the caller assigns
 * offsets, then `record` remembers the batch.
 *
 * Rules (as Kafka's ProducerAppendInfo):
 * - producerId -1: not idempotent, never checked.
 * - older epoch: INVALID_PRODUCER_EPOCH (the producer was fenced).
 * - newer epoch: must start at sequence 0, else OUT_OF_ORDER_SEQUENCE_NUMBER.
 * - same epoch: a batch equal (base and last sequence) to one of the last
 *   five is a duplicate and gets its original offsets back; a batch whose base
 *   sequence follows the last one (int32 wraps to 0) is appended; else:
 *   - its sequences all lie below the oldest remembered batch's base sequence,
 *     inside the history this table saw appended without a break
 *     (`historyLength`): DUPLICATE_SEQUENCE_NUMBER (Kafka's 46, "already
 *     written; offsets no longer known"). The table saw those sequences
 *     appended, so the producer must not resend the batch and must not take
 *     the answer for lost broker state (as it takes OUT_OF_ORDER_SEQUENCE_NUMBER).
 *     Below that history (the entry began mid-stream: the producer's state was
 *     evicted, or its older batches deleted by retention, and a later batch
 *     was accepted as from an unknown producer) nobody knows whether they were
 *     written: OUT_OF_ORDER_SEQUENCE_NUMBER, as before (a resend, at worst a
 *     duplicate, never a loss);
 *   - its base sequence is past the next expected one (a gap: batches were
 *     lost in between), or it overlaps the remembered batches without equal
 *     bounds (a retry must resend the same batch): OUT_OF_ORDER_SEQUENCE_NUMBER.
 *   "Below" and "past" are serial-number comparisons (RFC 1982) in the 2^31
 *   sequence space, so they hold across the int32 wrap: x precedes y when y is
 *   less than 2^30 ahead of x. A gap is checked first: when unsure, the answer
 *   that makes the producer resend (duplicates) beats the one that makes it
 *   drop the batch (loss).
 *   NB: the window and its history are what the log rebuilds (snapshot +
 *   replay, log-loader.ts): after a restart the same, from the snapshot
 *   (which stores `historyLength`); replayed from the log alone, the history
 *   starts at the producer's first surviving batch (shorter: more answers
 *   fall back to OUT_OF_ORDER, none wrongly to DUPLICATE).
 * - unknown producer id (new, evicted or retention-deleted): any sequence is
 *   accepted, as Kafka does once a producer's history is gone.
 * - request-sequenced producers (ids from REQUEST_SEQUENCED_PRODUCER_ID_MIN,
 *   2^52, up): a batch takes ONE sequence, whatever its record count (its
 *   lastSequence is its baseSequence). The Durable Streams endpoint numbers
 *   requests, not records (Producer-Seq is per HTTP append); the rule is read
 *   off the batch header, so a replay, a follower and a snapshot agree. The
 *   broker's id allocator hands out ids from 0 in blocks and never gets near
 *   2^52, and a client can claim only ids it was issued (producer-ids.ts).
 * Invariant: at most `maxProducers` entries (least recently written evicted).
 */
import { crc32c, type ErrorName } from '@runnel/client/codec';

/** Batches remembered per producer (Kafka's NUM_BATCHES_TO_RETAIN). */
export const PRODUCER_BATCHES_RETAINED = 5;
export const NO_PRODUCER_ID = -1;
const INT32_MAX = 0x7fff_ffff;
/** Producer ids at and above it number batches, not records (see the rules above); at most 2^53 − 1 (safe integers). */
export const REQUEST_SEQUENCED_PRODUCER_ID_MIN = 2 ** 52;

export interface ProducerBatch {
  baseSequence: number;
  lastSequence: number;
  baseOffset: number;
  lastOffset: number;
}

export interface ProducerEntry {
  producerId: number;
  producerEpoch: number;
  /** Oldest first, at most PRODUCER_BATCHES_RETAINED. */
  batches: ProducerBatch[];
  /**
   * Sequences of this epoch this table saw appended without a break, ending
   * at the latest batch's lastSequence (capped at 2^31): a resend below the
   * window is "already written" only within it.
   */
  historyLength: number;
}

/** What to do with a batch. `append`: assign offsets, write, then `record`. */
export type ProducerCheck =
  | { kind: 'append' }
  | { kind: 'duplicate'; baseOffset: number; lastOffset: number }
  | { kind: 'reject'; code: ErrorName; message: string };

/** The identity fields of a batch header that idempotence looks at. */
export interface ProducerBatchHeader {
  producerId: number;
  producerEpoch: number;
  baseSequence: number;
  lastOffsetDelta: number;
}

/** Sequence of the last record: base + delta, wrapping past int32 max to 0 (Kafka incrementSequence). */
export function lastSequenceOf(baseSequence: number, lastOffsetDelta: number): number {
  if (baseSequence > INT32_MAX - lastOffsetDelta) return lastOffsetDelta - (INT32_MAX - baseSequence) - 1;
  return baseSequence + lastOffsetDelta;
}

/** Sequences a batch takes beyond its first: its lastOffsetDelta, or 0 for a request-sequenced producer. */
export function sequenceDeltaOf(h: ProducerBatchHeader): number {
  return h.producerId >= REQUEST_SEQUENCED_PRODUCER_ID_MIN ? 0 : h.lastOffsetDelta;
}

function isNextSequence(lastSequence: number, nextSequence: number): boolean {
  return nextSequence === lastSequence + 1 || (lastSequence === INT32_MAX && nextSequence === 0);
}

function previousSequence(sequence: number): number {
  return sequence === 0 ? INT32_MAX : sequence - 1;
}

/** Sequences 0..INT32_MAX: arithmetic modulo 2^31. */
const SEQUENCE_SPACE = INT32_MAX + 1;
const HALF_SEQUENCE_SPACE = SEQUENCE_SPACE / 2;

/** Serial-number order (RFC 1982 §3.2) in the wrapping sequence space: `a` precedes `b` when `b` is 1 to 2^30 − 1 ahead of it. */
export function sequencePrecedes(a: number, b: number): boolean {
  const ahead = (b - a + SEQUENCE_SPACE) % SEQUENCE_SPACE;
  return ahead > 0 && ahead < HALF_SEQUENCE_SPACE;
}

const ACCEPT: ProducerCheck = { kind: 'append' };

/** "RPS2": first 4 bytes of a producer snapshot (a foreign file is replayed from the log instead). */
const SNAPSHOT_MAGIC = 0x52505332;
/** "RPS1": snapshots written before `historyLength`; read with the history of their window only (conservative, no replay). */
const SNAPSHOT_MAGIC_V1 = 0x52505331;

/** Byte layout of a snapshot: header, `producerCount` × (SnapshotProducer, batchCount × SnapshotBatch), CRC-32C trailer. */
const SnapshotLayout = { magic: 0, producerCount: 4, headerBytes: 8, trailerBytes: 4 } as const;
/** One producer, relative to its start (producerId is a float64: ids are safe integers, not int64 bit patterns). RPS1 ends before historyLength (11 bytes). */
const SnapshotProducer = { producerId: 0, producerEpoch: 8, batchCount: 10, historyLength: 11, bytes: 19, bytesV1: 11 } as const;
/** One remembered batch, relative to its start. */
const SnapshotBatch = { baseSequence: 0, lastSequence: 4, baseOffset: 8, lastOffset: 16, bytes: 24 } as const;

/** `sequence` lies within the entry's unbroken history (ending at its latest lastSequence). */
function isInHistory(entry: ProducerEntry, sequence: number): boolean {
  const latest = entry.batches[entry.batches.length - 1];
  return (latest.lastSequence - sequence + SEQUENCE_SPACE) % SEQUENCE_SPACE < entry.historyLength;
}

/** A batch of the current epoch that is neither remembered nor next: already written (below the window), a gap, or a mismatched overlap. */
function checkOutOfWindow(entry: ProducerEntry, h: ProducerBatchHeader, lastSequence: number): ProducerCheck {
  const oldest = entry.batches[0];
  const latest = entry.batches[entry.batches.length - 1];
  const expected = lastSequenceOf(latest.lastSequence, 1);
  const who = `producer ${h.producerId} epoch ${h.producerEpoch}`;
  const range = `sequences ${h.baseSequence}..${lastSequence}`;
  if (sequencePrecedes(expected, h.baseSequence)) {
    return { kind: 'reject', code: 'OUT_OF_ORDER_SEQUENCE_NUMBER', message: `${who}: expected sequence ${expected}, got ${h.baseSequence}: sequences ${expected}..${previousSequence(h.baseSequence)} are missing (a gap)` };
  }
  if (sequencePrecedes(lastSequence, oldest.baseSequence)) {
    if (!isInHistory(entry, h.baseSequence)) {
      const start = lastSequenceOf(latest.lastSequence, SEQUENCE_SPACE - entry.historyLength + 1);
      return { kind: 'reject', code: 'OUT_OF_ORDER_SEQUENCE_NUMBER', message: `${who}: ${range} are older than the history this partition has of the producer (it starts at sequence ${start}: earlier state was evicted or deleted by retention): whether they were written is unknown; expected sequence ${expected}` };
    }
    return {
      kind: 'reject', code: 'DUPLICATE_SEQUENCE_NUMBER',
      message: `${who}: ${range} are below the oldest of the last ${entry.batches.length} batches remembered (sequence ${oldest.baseSequence}): already written, their offsets are no longer known; do not resend them`,
    };
  }
  return {
    kind: 'reject', code: 'OUT_OF_ORDER_SEQUENCE_NUMBER',
    message: `${who}: ${range} overlap the batches remembered (sequences ${oldest.baseSequence}..${latest.lastSequence}) but equal none of them: a retry must resend the same batch; expected sequence ${expected}`,
  };
}

export class ProducerStateTable {
  /** Insertion order = least recently written first (for eviction). */
  readonly #entries = new Map<number, ProducerEntry>();

  constructor(readonly maxProducers: number) {}

  get size(): number {
    return this.#entries.size;
  }

  entry(producerId: number): ProducerEntry | undefined {
    return this.#entries.get(producerId);
  }

  check(h: ProducerBatchHeader): ProducerCheck {
    if (h.producerId === NO_PRODUCER_ID) return ACCEPT;
    if (h.producerId < 0 || h.producerEpoch < 0 || h.baseSequence < 0) {
      return { kind: 'reject', code: 'INVALID_RECORD', message: `idempotent batch needs producerId, producerEpoch and baseSequence >= 0 (got ${h.producerId}/${h.producerEpoch}/${h.baseSequence})` };
    }
    const entry = this.#entries.get(h.producerId);
    if (!entry) return ACCEPT;
    if (h.producerEpoch < entry.producerEpoch) {
      return { kind: 'reject', code: 'INVALID_PRODUCER_EPOCH', message: `producer ${h.producerId} epoch ${h.producerEpoch} is older than ${entry.producerEpoch}` };
    }
    if (h.producerEpoch > entry.producerEpoch) {
      if (h.baseSequence === 0) return ACCEPT;
      return { kind: 'reject', code: 'OUT_OF_ORDER_SEQUENCE_NUMBER', message: `producer ${h.producerId} new epoch ${h.producerEpoch} must start at sequence 0, got ${h.baseSequence}` };
    }
    const lastSequence = lastSequenceOf(h.baseSequence, sequenceDeltaOf(h));
    for (const b of entry.batches) {
      if (b.baseSequence === h.baseSequence && b.lastSequence === lastSequence) {
        return { kind: 'duplicate', baseOffset: b.baseOffset, lastOffset: b.lastOffset };
      }
    }
    const latest = entry.batches[entry.batches.length - 1];
    if (!latest || isNextSequence(latest.lastSequence, h.baseSequence)) return ACCEPT;
    return checkOutOfWindow(entry, h, lastSequence);
  }

  /** Remembers an appended batch (after `check` said append, or while replaying the log). */
  record(h: ProducerBatchHeader, baseOffset: number): void {
    if (h.producerId < 0) return;
    let entry = this.#entries.get(h.producerId);
    if (entry) {
      this.#entries.delete(h.producerId);
      if (h.producerEpoch !== entry.producerEpoch) entry = { producerId: h.producerId, producerEpoch: h.producerEpoch, batches: [], historyLength: 0 };
    } else {
      entry = { producerId: h.producerId, producerEpoch: h.producerEpoch, batches: [], historyLength: 0 };
    }
    const latest = entry.batches[entry.batches.length - 1];
    const sequenceDelta = sequenceDeltaOf(h);
    const sequences = sequenceDelta + 1;
    // Unbroken only when this batch follows the latest (a replay may meet a batch accepted after an eviction it did not repeat).
    entry.historyLength = latest && isNextSequence(latest.lastSequence, h.baseSequence) ? Math.min(entry.historyLength + sequences, SEQUENCE_SPACE) : sequences;
    entry.batches.push({ baseSequence: h.baseSequence, lastSequence: lastSequenceOf(h.baseSequence, sequenceDelta), baseOffset, lastOffset: baseOffset + h.lastOffsetDelta });
    if (entry.batches.length > PRODUCER_BATCHES_RETAINED) entry.batches.shift();
    this.#entries.set(h.producerId, entry);
    if (this.#entries.size > this.maxProducers) {
      const oldest = this.#entries.keys().next().value as number;
      this.#entries.delete(oldest);
    }
  }

  /** Forgets producers whose last batch is below `logStartOffset` (retention deleted their history). */
  removeBefore(logStartOffset: number): void {
    for (const [id, e] of this.#entries) {
      if (e.batches[e.batches.length - 1].lastOffset < logStartOffset) this.#entries.delete(id);
    }
  }

  /** Binary snapshot (layout: `SnapshotLayout`, `SnapshotProducer`, `SnapshotBatch`), then CRC-32C of all before it. */
  encodeSnapshot(): Uint8Array {
    let bytes = SnapshotLayout.headerBytes + SnapshotLayout.trailerBytes;
    for (const e of this.#entries.values()) bytes += SnapshotProducer.bytes + e.batches.length * SnapshotBatch.bytes;
    const out = new Uint8Array(bytes);
    const view = new DataView(out.buffer);
    view.setUint32(SnapshotLayout.magic, SNAPSHOT_MAGIC);
    view.setUint32(SnapshotLayout.producerCount, this.#entries.size);
    let at = SnapshotLayout.headerBytes;
    for (const e of this.#entries.values()) {
      view.setFloat64(at + SnapshotProducer.producerId, e.producerId);
      view.setInt16(at + SnapshotProducer.producerEpoch, e.producerEpoch);
      view.setUint8(at + SnapshotProducer.batchCount, e.batches.length);
      view.setFloat64(at + SnapshotProducer.historyLength, e.historyLength);
      at += SnapshotProducer.bytes;
      for (const b of e.batches) {
        view.setInt32(at + SnapshotBatch.baseSequence, b.baseSequence);
        view.setInt32(at + SnapshotBatch.lastSequence, b.lastSequence);
        view.setFloat64(at + SnapshotBatch.baseOffset, b.baseOffset);
        view.setFloat64(at + SnapshotBatch.lastOffset, b.lastOffset);
        at += SnapshotBatch.bytes;
      }
    }
    view.setUint32(at, crc32c(out, 0, at));
    return out;
  }

  /** Restores a snapshot; null when it is torn or corrupt (the caller replays the log instead). */
  static decodeSnapshot(bytes: Uint8Array, maxProducers: number): ProducerStateTable | null {
    if (bytes.length < SnapshotLayout.headerBytes + SnapshotLayout.trailerBytes) return null;
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const end = bytes.length - SnapshotLayout.trailerBytes;
    const magic = view.getUint32(SnapshotLayout.magic);
    if ((magic !== SNAPSHOT_MAGIC && magic !== SNAPSHOT_MAGIC_V1) || view.getUint32(end) !== crc32c(bytes, 0, end)) return null;
    const isV1 = magic === SNAPSHOT_MAGIC_V1;
    const producerBytes = isV1 ? SnapshotProducer.bytesV1 : SnapshotProducer.bytes;
    const table = new ProducerStateTable(maxProducers);
    const count = view.getUint32(SnapshotLayout.producerCount);
    let at = SnapshotLayout.headerBytes;
    for (let i = 0; i < count; i++) {
      if (at + producerBytes > end) return null;
      const entry: ProducerEntry = {
        producerId: view.getFloat64(at + SnapshotProducer.producerId), producerEpoch: view.getInt16(at + SnapshotProducer.producerEpoch), batches: [],
        historyLength: isV1 ? 0 : view.getFloat64(at + SnapshotProducer.historyLength),
      };
      const n = view.getUint8(at + SnapshotProducer.batchCount);
      at += producerBytes;
      if (n === 0 || n > PRODUCER_BATCHES_RETAINED || at + n * SnapshotBatch.bytes > end) return null;
      for (let j = 0; j < n; j++, at += SnapshotBatch.bytes) {
        entry.batches.push({
          baseSequence: view.getInt32(at + SnapshotBatch.baseSequence), lastSequence: view.getInt32(at + SnapshotBatch.lastSequence),
          baseOffset: view.getFloat64(at + SnapshotBatch.baseOffset), lastOffset: view.getFloat64(at + SnapshotBatch.lastOffset),
        });
      }
      // RPS1 has no history: only the window itself counts as seen (below it: OUT_OF_ORDER, as when it was written).
      if (isV1) entry.historyLength = (entry.batches[n - 1].lastSequence - entry.batches[0].baseSequence + SEQUENCE_SPACE) % SEQUENCE_SPACE + 1;
      if (!Number.isSafeInteger(entry.historyLength) || entry.historyLength < 1 || entry.historyLength > SEQUENCE_SPACE) return null;
      table.#entries.set(entry.producerId, entry);
    }
    return at === end ? table : null;
  }
}
