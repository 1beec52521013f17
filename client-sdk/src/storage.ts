/**
 * Storage seam: where a client keeps what must survive a reload — consumer
 * offsets (offset store) and unacknowledged records (outbox store). Three
 * implementations share one contract suite (storage.contract.ts): memory
 * (memory-storage.ts), IndexedDB (indexeddb-storage.ts and its halves, subpath
 * `@runnel/client/indexeddb`) and a file (file-storage.ts, subpath
 * `@runnel/client/node`). Every method is atomic: a crash leaves either the
 * old or the new state, never half of it.
 */
import type { RecordHeader } from './codec/record-batch.ts';

/** The next offset a consumer will read, with the id of the topic it belongs to (KIP-516). */
export interface StoredOffset { offset: number; topicId: string }

export interface OffsetStore {
  /** Stored next offsets of `consumerId` for `topic`, by partition. */
  getOffsets(consumerId: string, topic: string): Promise<Map<number, StoredOffset>>;
  /** Stores (overwrites) the given partitions' next offsets. */
  putOffsets(consumerId: string, topic: string, offsets: ReadonlyMap<number, StoredOffset>): Promise<void>;
  /** Forgets every stored offset of `consumerId` for `topic`. */
  deleteOffsets(consumerId: string, topic: string): Promise<void>;
  /**
   * Exactly-once hook (IndexedDB only): runs `work(tx)` in one transaction
   * over `storeNames` plus the offsets, then writes the offsets `work`
   * returns in that same transaction. `work` may only await requests of `tx`.
   */
  transact?(storeNames: string[], consumerId: string, topic: string, work: (tx: unknown) => Promise<ReadonlyMap<number, StoredOffset>>): Promise<void>;
}

/** A record accepted by `send` and not yet in a frozen batch. */
export interface OutboxRecord {
  id: number;
  topic: string;
  /** −1 = the partitioner decides when the batch is built. */
  partition: number;
  key: Uint8Array | null;
  value: Uint8Array | null;
  headers: RecordHeader[];
  timestampMs: number;
}

/**
 * A batch whose partition, producer id/epoch and baseSequence are fixed.
 * Invariant: `bytes` never change once stored; every resend (reconnect,
 * reload, beacon) sends exactly these bytes so the broker de-duplicates it.
 */
export interface FrozenBatch {
  id: number;
  topic: string;
  partition: number;
  baseSequence: number;
  recordIds: number[];
  bytes: Uint8Array;
}

/** Idempotent producer identity and the next sequence per `topic/partition`. */
export interface ProducerState {
  producerId: number; producerEpoch: number; sequences: Record<string, number>;
  /** Issued by the broker with the id; proves ownership when the id is re-claimed (reload) or sent by beacon. */
  producerSecret?: string;
}

export interface OutboxSnapshot { producer: ProducerState | null; records: OutboxRecord[]; batches: FrozenBatch[] }

export interface OutboxStore {
  /** Everything stored, records and batches sorted by id. */
  load(): Promise<OutboxSnapshot>;
  addRecords(records: readonly OutboxRecord[]): Promise<void>;
  /** In one transaction: store `batches`, delete their records, save `producer`. */
  freeze(batches: readonly FrozenBatch[], producer: ProducerState): Promise<void>;
  /** Delete acknowledged (or rejected) batches. */
  deleteBatches(ids: readonly number[]): Promise<void>;
  /** Delete records that will never be sent (rejected before freezing). */
  deleteRecords(ids: readonly number[]): Promise<void>;
  saveProducer(producer: ProducerState): Promise<void>;
}

/** An outbox whose client is gone (e.g. a closed tab), owned by this client until `release()`. */
export interface AdoptedOutbox { outbox: OutboxStore; release(): void }

/**
 * A state folded from a topic (materialize.ts) with the per-partition next
 * offsets it covers. Invariant: `state` is the fold of exactly the records
 * below `offsets` (and at or past where the fold started): the two are only
 * ever stored together, so a reload never counts a record twice or skips one.
 */
export interface StateSnapshot<S = unknown> {
  state: S;
  offsets: ReadonlyMap<number, StoredOffset>;
  /** Records folded into `state` since it was `initial`. */
  recordCount: number;
}

export interface StateStore {
  /** The snapshot stored under `name` for `topic`, or null. */
  getState(name: string, topic: string): Promise<StateSnapshot | null>;
  /**
   * Replaces the snapshot in one atomic write (one IndexedDB transaction; a
   * file written to a temp file, fsynced and renamed). `state` is copied
   * when called (structured clone / JSON), so later mutation does not leak in.
   */
  putState(name: string, topic: string, snapshot: StateSnapshot): Promise<void>;
  deleteState(name: string, topic: string): Promise<void>;
}

/** Offsets and outbox of one client. Create one per clientId. */
export interface Storage {
  offsets: OffsetStore;
  /** Snapshots of states folded from topics (`materialize`); IndexedDB and file storage have one. */
  states?: StateStore;
  /** This client's own outbox: no other live client writes it. */
  outbox: OutboxStore;
  /** Outboxes left with unsent records by clients that are gone; the client drains each, then releases it. */
  orphans?(): Promise<AdoptedOutbox[]>;
  close(): void | Promise<void>;
}

/** What a consumer-only client (`createConsumer`) uses of a Storage: e.g. `indexedDbConsumerStorage()`. */
export type ConsumerStorage = Pick<Storage, 'offsets' | 'states' | 'close'>;
/** What a producer-only client (`createProducer`) uses of a Storage: e.g. `indexedDbProducerStorage()`. */
export type ProducerStorage = Pick<Storage, 'outbox' | 'orphans' | 'close'>;
