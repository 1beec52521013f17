/**
 * Outbox core (sans-IO): records accepted by `send` until the broker
 * acknowledges them. Records gather per topic-partition (the record
 * accumulator); a batch is FROZEN when full or lingered: it gets its
 * partition, producer id/epoch and baseSequence and its bytes are encoded
 * once. The driver (producer.ts) persists every freeze before the batch is
 * first sent and sends frozen batches in sequence order per partition.
 *
 * Invariants: per partition, baseSequences are contiguous in freeze order;
 * a frozen batch's bytes change only when the producer identity changes
 * (`restamp`, a new producer id or epoch) or a rejected predecessor is
 * dropped (`resequence`) — both only when the broker cannot have stored it:
 * a batch that was ever sent (`sent`; every batch loaded from storage counts
 * as sent) is never re-stamped, except behind a sequence gap the broker
 * reported (nothing at or past a gap can be in the log).
 * Per partition at most PRODUCER_BATCHES_RETAINED batches may be in the log
 * while still stored (in flight or sent before, plus acknowledged ones whose
 * delete has not committed: `confirming`), so the broker recognises every
 * resend (`sendable`).
 * Bounded: `isFull` refuses records past maxOutboxRecords/maxOutboxBytes.
 */
import { crc32c } from './codec/crc32c.ts';
import { writeInt16, writeInt32, writeInt64 } from './codec/big-endian.ts';
import { BATCH_CRC_START, BatchField, encodeRecordBatch } from './codec/record-batch.ts';
import { IDLE_BATCH_BYTES, PRODUCER_BATCHES_RETAINED, type ClientLimits } from './limits.ts';
import type { FrozenBatch, OutboxRecord, ProducerState } from './storage.ts';

/** A frozen batch and its send state. */
export interface BatchState {
  batch: FrozenBatch;
  /** Stored (with its sequence) — only then may it be sent. */
  persisted: boolean;
  inflight: boolean;
  /** These bytes may be in the broker's log: sent at least once, or loaded from storage (whether sent is not known). */
  sent: boolean;
  /** When a broker first answered it with a retryable error (the delivery timeout runs from here). */
  failingSinceMs?: number;
  /** The attempt in flight is not the first (an earlier one may be in the log, whatever this one is answered). */
  resent?: boolean;
  /** Its records, `recordIds` order, when frozen by this outbox (none for a batch loaded from storage: nobody waits for it). */
  records: OutboxRecord[];
}

/**
 * A tracked record's size (recordSize, plus what `resize` added) under a symbol key: no map entry per record, and
 * a store's structured clone or JSON of the record leaves it out. Absent (undefined) once untracked.
 */
export const SIZE = Symbol();
type Sized = { [SIZE]?: number };

interface Accumulator { topic: string; partition: number; key: string; records: OutboxRecord[]; bytes: number }

export const tpKey = (topic: string, partition: number): string => `${topic}/${partition}`;

/** Per-record bytes counted besides key, value and headers (length, attributes, deltas, varints: ~Kafka's record overhead). */
export const RECORD_OVERHEAD_BYTES = 16;

/** Approximate wire size of a record (for batch and outbox bounds); `valueBytes` for a value not written yet. */
export function recordSize(r: OutboxRecord, valueBytes = r.value?.length ?? 0): number {
  let size = RECORD_OVERHEAD_BYTES + (r.key?.length ?? 0) + valueBytes;
  // NB: indexed loops on the per-record paths here: `for…of` allocated an iterator per record (producer profile).
  for (let i = 0, headers = r.headers; i < headers.length; i++) size += headers[i].key.length + (headers[i].value?.length ?? 0) + 4;
  return size;
}

const SEQUENCE_WRAP = 0x7fffffff;

/** A tracked record's size (every record in an accumulator or a batch is tracked). */
const sizeOf = (r: OutboxRecord): number => (r as Sized)[SIZE]!;

export class Outbox {
  readonly #accumulators = new Map<string, Accumulator>();
  /** Frozen, unacknowledged batches per topic-partition, in sequence order. */
  readonly queues = new Map<string, BatchState[]>();
  /** Acknowledged batches per topic-partition whose delete from storage has not committed yet. */
  readonly confirming: Record<string, number> = {};
  producer: ProducerState | null = null;
  recordCount = 0;
  byteCount = 0;
  /** The accumulator the last record went to (most sends go where the previous one did: no key string per record). */
  #last: Accumulator | null = null;

  constructor(private readonly limits: ClientLimits) {}

  isFull(bytes: number): boolean {
    return this.recordCount + 1 > this.limits.maxOutboxRecords || this.byteCount + bytes > this.limits.maxOutboxBytes;
  }

  /** Counts a record against the bounds until it is frozen and its batch removed, or it is untracked. */
  track(record: OutboxRecord, size = recordSize(record)): number {
    (record as Sized)[SIZE] = size;
    this.recordCount++;
    this.byteCount += size;
    return size;
  }

  /**
   * A tracked record's value turned out `extraBytes` longer than counted (UTF-8 beyond ASCII, written after
   * `track`). NB: its accumulator's `bytes` (when to freeze) stay as counted; `freeze` splits by the sizes.
   */
  resize(record: OutboxRecord, extraBytes: number): void {
    const size = (record as Sized)[SIZE];
    if (size === undefined) return; // not admitted (yet), or left the outbox
    (record as Sized)[SIZE] = size + extraBytes;
    this.byteCount += extraBytes;
  }

  /** Adds a record with a known partition to its accumulator, which it returns (see batchFull, isIdle). */
  accumulate(record: OutboxRecord, partition: number): Accumulator {
    let acc = this.#last;
    if (acc === null || acc.partition !== partition || acc.topic !== record.topic) {
      const key = tpKey(record.topic, partition);
      acc = this.#accumulators.get(key) ?? null;
      if (acc === null) this.#accumulators.set(key, (acc = { topic: record.topic, partition, key, records: [], bytes: 0 }));
      this.#last = acc;
    }
    acc.records.push(record);
    acc.bytes += sizeOf(record);
    return acc;
  }

  /** The accumulator holds a whole batch (maxBatchRecords or maxBatchBytes, or IDLE_BATCH_BYTES with nothing in flight): freeze it now. */
  batchFull(acc: Accumulator): boolean {
    return acc.records.length >= this.limits.maxBatchRecords || acc.bytes >= this.limits.maxBatchBytes || (acc.bytes >= IDLE_BATCH_BYTES && this.isIdle(acc));
  }

  /** Records accumulated (not frozen yet) for `topic`/`partition`, if any. */
  accumulated(topic: string, partition: number): Accumulator | undefined {
    return this.#accumulators.get(tpKey(topic, partition));
  }

  /** Takes `record` out of its accumulator (not frozen yet: never sent); false if it is in none. Still tracked: the caller untracks it. */
  withdraw(record: OutboxRecord): boolean {
    for (const [key, acc] of this.#accumulators) {
      if (acc.topic !== record.topic) continue;
      const at = acc.records.indexOf(record);
      if (at < 0) continue;
      acc.records.splice(at, 1);
      acc.bytes -= sizeOf(record);
      if (acc.records.length === 0) this.#drop(acc);
      return true;
    }
    return false;
  }

  /** No frozen batch of the accumulator's partition is waiting for its ack (nothing stored, in flight or queued to send). */
  isIdle(acc: Accumulator): boolean {
    return !this.queues.get(acc.key)?.length;
  }

  /**
   * The partition's queue already holds enough frozen batches to fill its pipeline (maxInflightPerPartition, sent
   * or waiting): a batch frozen now could not go before one of them is answered.
   */
  backedUp(key: string): boolean {
    return (this.queues.get(key)?.length ?? 0) >= this.limits.maxInflightPerPartition;
  }

  /**
   * Freezes accumulated records (all of them, or just `only`) into batches
   * of at most maxBatchRecords/maxBatchBytes. Needs a producer identity.
   * `holdBackedUp` (a linger, not a flush): accumulators of `backedUp` partitions stay open, so what comes
   * while a partition cannot send (an outage, a slow leader) grows one batch, frozen when an ack or a failure
   * frees a slot, instead of a queue of lingerMs-sized batches that a reconnect then sends
   * maxInflightPerPartition at a time (fault seed 7094: 1,700 records behind a whole-cluster restart took
   * 25 s to drain at two records per batch, and the next fault's failover measured that backlog).
   * Ordering: the caller persists the returned batches and `producer`
   * (sequences) in one write BEFORE sending any of them.
   */
  freeze(nextBatchId: () => number, only?: Accumulator, holdBackedUp = false): FrozenBatch[] {
    const producer = this.producer;
    if (producer === null) return [];
    const out: FrozenBatch[] = [];
    for (const acc of only ? [only] : [...this.#accumulators.values()]) {
      if (holdBackedUp && !this.batchFull(acc) && this.backedUp(acc.key)) continue;
      this.#drop(acc);
      const records = acc.records;
      let start = 0;
      while (start < records.length) {
        let end = start, bytes = 0;
        while (end < records.length && end - start < this.limits.maxBatchRecords && (end === start || bytes + sizeOf(records[end]) <= this.limits.maxBatchBytes)) {
          bytes += sizeOf(records[end]);
          end++;
        }
        out.push(this.#freezeOne(producer, acc.topic, acc.partition, records.slice(start, end), nextBatchId()));
        start = end;
      }
    }
    return out;
  }

  #drop(acc: Accumulator): void {
    this.#accumulators.delete(acc.key);
    if (this.#last === acc) this.#last = null;
  }

  #freezeOne(producer: ProducerState, topic: string, partition: number, records: OutboxRecord[], id: number): FrozenBatch {
    const key = tpKey(topic, partition);
    const baseSequence = producer.sequences[key] ?? 0;
    producer.sequences[key] = (baseSequence + records.length) % SEQUENCE_WRAP;
    const bytes = encodeRecordBatch({ producerId: producer.producerId, producerEpoch: producer.producerEpoch, baseSequence, records });
    const batch: FrozenBatch = { id, topic, partition, baseSequence, recordIds: records.map((r) => r.id), bytes };
    this.enqueue(batch, records);
    return batch;
  }

  /**
   * Queues a batch it froze (with its `records`, still tracked) or, `records` null, one loaded from storage after a
   * reload (persisted; it may have been sent), counted against the bounds by its encoded length.
   */
  enqueue(batch: FrozenBatch, records: OutboxRecord[] | null): void {
    const key = tpKey(batch.topic, batch.partition), loaded = records === null;
    let q = this.queues.get(key);
    if (!q) this.queues.set(key, (q = []));
    q.push({ batch, persisted: loaded, inflight: false, sent: loaded, records: records ?? [] });
    if (loaded) {
      this.recordCount += batch.recordIds.length;
      this.byteCount += batch.bytes.length;
    }
  }

  /** Removes an acknowledged or rejected batch and stops counting it; returns its state (null if not queued). */
  remove(batch: FrozenBatch): BatchState | null {
    const q = this.queues.get(tpKey(batch.topic, batch.partition));
    const index = q?.findIndex((s) => s.batch === batch) ?? -1;
    if (index < 0) return null;
    const [state] = q!.splice(index, 1), records = state.records;
    this.recordCount -= batch.recordIds.length;
    this.byteCount -= records.length ? records.reduce((n, r) => n + sizeOf(r), 0) : batch.bytes.length;
    return state;
  }

  /** Stops counting a record that was never frozen (withdrawn, or failed before a batch); once. */
  untrack(record: OutboxRecord): void {
    const size = (record as Sized)[SIZE];
    if (size === undefined) return;
    (record as Sized)[SIZE] = undefined;
    this.recordCount--;
    this.byteCount -= size;
  }

  /** Every record tracked by this outbox that is still in memory: accumulated, or in a batch it froze. */
  records(): OutboxRecord[] {
    return [...this.#accumulators.values(), ...this.states()].flatMap((x) => x.records);
  }

  /** Every frozen batch's state, partition by partition in sequence order. */
  states(): BatchState[] {
    return [...this.queues.values()].flat();
  }

  /**
   * Batches that may be sent now: per partition, in order, persisted, not in
   * flight, at most maxInflightPerPartition in flight, and only the first
   * PRODUCER_BATCHES_RETAINED − `confirming` of the queue. Sent (or resent:
   * after a reload, which stored batches are in the log is not known) the
   * i-th may be appended, and then so are the i before it (sequences are
   * contiguous) and the confirming ones: at most PRODUCER_BATCHES_RETAINED
   * stored batches are in the log, all within the broker's window.
   * A partition that is not `isPipelined` (no ack since its last error or
   * since the connection began) sends one batch at a time: its head, once
   * nothing of it is in flight — a retry is never overtaken.
   */
  sendable(isPaused: (key: string) => boolean, isPipelined: (key: string) => boolean): BatchState[] {
    const out: BatchState[] = [];
    for (const [key, q] of this.queues) {
      if (isPaused(key)) continue;
      let inflight = 0, position = this.confirming[key] ?? 0;
      const max = isPipelined(key) ? this.limits.maxInflightPerPartition : 1;
      for (const s of q) if (s.inflight) inflight++;
      for (const s of q) {
        if (inflight >= max || !s.persisted || position++ >= PRODUCER_BATCHES_RETAINED) break;
        if (s.inflight) continue;
        out.push(s);
        inflight++;
      }
    }
    return out;
  }

  /**
   * New producer identity (new id or epoch): every frozen batch gets the new
   * id/epoch and sequences from 0 per partition. Returns the batches to persist.
   * NB: only batches that cannot be in the log (not `sent`: never sent, or
   * behind a sequence gap the broker reported) may be re-stamped — one already
   * written would be written twice: the caller removes the others first.
   */
  restamp(producer: ProducerState): FrozenBatch[] {
    producer.sequences = {};
    this.producer = producer;
    const changed: FrozenBatch[] = [];
    for (const [key, q] of this.queues) changed.push(...this.resequence(key, 0, 0));
    return changed;
  }

  /** Re-stamps queue `key` from position `from` with contiguous sequences starting at `baseSequence`. */
  resequence(key: string, from: number, baseSequence: number): FrozenBatch[] {
    const producer = this.producer!;
    const q = this.queues.get(key) ?? [];
    const changed: FrozenBatch[] = [];
    let seq = baseSequence;
    for (let i = from; i < q.length; i++) {
      const old = q[i].batch;
      const bytes = stampBatch(old.bytes, producer.producerId, producer.producerEpoch, seq);
      q[i].batch = { ...old, baseSequence: seq, bytes };
      q[i].persisted = q[i].sent = false;
      changed.push(q[i].batch);
      seq = (seq + old.recordIds.length) % SEQUENCE_WRAP;
    }
    producer.sequences[key] = seq;
    return changed;
  }
}

/** Copy of a batch with new producer fields and a recomputed CRC (which covers them). */
export function stampBatch(bytes: Uint8Array, producerId: number, producerEpoch: number, baseSequence: number): Uint8Array {
  const out = bytes.slice();
  writeInt64(out, BatchField.producerId, producerId);
  writeInt16(out, BatchField.producerEpoch, producerEpoch);
  writeInt32(out, BatchField.baseSequence, baseSequence);
  writeInt32(out, BatchField.crc, crc32c(out, BATCH_CRC_START, out.length));
  return out;
}
