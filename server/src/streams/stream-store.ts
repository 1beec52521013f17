/**
 * What a Durable Stream is beyond its topic's records: content type, expiry,
 * closed flag, fork parent, producer key, Stream-Seq and soft-delete state;
 * and the seam that keeps it. Two implementations share one contract
 * (stream-store.contract.ts):
 *
 * - single node: `FileStreamStore`, one JSON file per stream in
 *   `<data>/streams/`, rewritten atomically (write, fsync, rename) before a
 *   change is answered;
 * - cluster: `EtcdStreamStore`, one etcd key per stream path, so every broker
 *   serves every stream URL from the same state; its cache follows an etcd
 *   watch.
 *
 * Invariant: a change is one `commit` of compare-and-swaps — a create only if
 * the path holds no stream, an update or remove only if the stream is still
 * at the revision the caller read — applied all together or not at all, and
 * durable before `commit` resolves true. Two brokers racing a PUT, close,
 * delete, fork or Stream-Seq claim can never both win: the loser gets false,
 * re-reads (`refresh`) and decides again. Idempotent producer state is not
 * here: it is in the records (producer-mapping.ts).
 *
 * Limits (docs/durable-streams.md "Stream state"): the cache a broker serves
 * from lags another broker's commit by the watch delay (appends read etcd
 * first; a plain append concurrent with a close through another broker may
 * still land after it); the topic and the state are two writes, so a crash
 * between them can leave a `ds.…` topic that no stream names.
 */
import { z } from 'zod';

export interface StreamMeta {
  path: string;
  /** Offset generation (protocol.ts); a fork has its source's. */
  generation: string;
  /** Unique per incarnation: the ETag's stream id and the topic-name suffix. */
  incarnation: string;
  /** The Runnel topic (1 partition) holding this stream's own records. */
  topic: string;
  contentType: string;
  ttlSeconds?: number;
  expiresAtMs?: number;
  createdAtMs: number;
  /** Last read or append as some broker shared it (cluster: sliding TTL is the same on every broker). */
  lastAccessMs?: number;
  closed: boolean;
  /** The producer tuple whose append closed the stream (its retry is a duplicate, not a conflict). */
  closedBy?: { id: string; epoch: number; seq: number };
  /**
   * Key of the stream's Producer-Id → Runnel producer id mapping (producer-mapping.ts); minted at creation.
   * The producer state itself is the topic partition's (in the records), not this state's.
   */
  producerKey?: string;
  /** Producer state of streams written before it moved into the log: read as a fallback, never written. */
  producers?: Record<string, { epoch: number; lastSeq: number }>;
  /** Highest Stream-Seq accepted (scope: the stream). */
  lastStreamSeq?: string;
  /** Positions below `base` are the source's (a fork); 0 otherwise. */
  base: number;
  fork?: { sourcePath: string; sourceIncarnation: string; offset: string; subOffset: number };
  /** Deleted while forks still read it: 410 to direct access, data kept. */
  softDeleted: boolean;
  /** Live forks reading this stream. */
  forkCount: number;
}

/** A stream's state as a store holds it: never mutated; a change is a `commit` of a new `StreamMeta`. */
export type StoredStream = Readonly<StreamMeta> & {
  /** The store's version of this state (etcd: the key's mod revision); what `update`/`remove` compare. */
  readonly revision: string;
};

/** One compare-and-swap of a `commit`. */
export type StreamChange =
  /** Only if no stream (live or soft-deleted) has `meta.path`. */
  | { type: 'create'; meta: StreamMeta }
  /** Only if the stream at `expected.path` is still at `expected.revision`; same path and incarnation. */
  | { type: 'update'; expected: StoredStream; next: StreamMeta }
  /** Only if the stream at `expected.path` is still at `expected.revision`. */
  | { type: 'remove'; expected: StoredStream };

/** A stream's state changed (by this broker or, in a cluster, another): what the cache held before and holds now. */
export type StreamChangeListener = (path: string, before: StoredStream | undefined, now: StoredStream | undefined) => void;

export interface StreamStore {
  /** Streams held (live and soft-deleted), as cached: what MAX_STREAMS bounds. */
  readonly size: number;
  /** Whether other brokers serve the same state (cluster): then sliding-TTL accesses are shared too. */
  readonly isShared: boolean;
  /** The live stream at `path`, as cached. */
  get(path: string): StoredStream | undefined;
  /** A soft-deleted stream at `path` (it blocks re-creation and answers 410), as cached. */
  softDeletedAt(path: string): StoredStream | undefined;
  /** Live or soft-deleted, by incarnation (forks find their source through it), as cached. */
  byId(incarnation: string): StoredStream | undefined;
  /**
   * Applies every change or none: true once they are durable (and cached); false when a compare failed (the
   * cache may be stale: `refresh` the paths and decide again). Each path at most once.
   */
  commit(changes: readonly StreamChange[]): Promise<boolean>;
  /** The stream at `path` as the authority holds it now (cluster: a linearizable etcd read), cached. */
  refresh(path: string): Promise<StoredStream | undefined>;
  /** Calls `listener` after every cached change; returns the unsubscribe. */
  onChange(listener: StreamChangeListener): () => void;
  close(): Promise<void>;
}

/** Bound on the number of streams (each is a topic and a state entry): one broker's, or a cluster's. */
export const MAX_STREAMS = 100_000;

const streamMetaSchema = z.object({
  path: z.string().min(1),
  generation: z.string().min(1),
  incarnation: z.string().min(1),
  topic: z.string().min(1),
  contentType: z.string(),
  ttlSeconds: z.number().int().min(0).optional(),
  expiresAtMs: z.number().optional(),
  createdAtMs: z.number(),
  lastAccessMs: z.number().optional(),
  closed: z.boolean(),
  closedBy: z.object({ id: z.string(), epoch: z.number().int(), seq: z.number().int() }).optional(),
  producerKey: z.string().optional(),
  producers: z.record(z.string(), z.object({ epoch: z.number().int(), lastSeq: z.number().int() })).optional(),
  lastStreamSeq: z.string().optional(),
  base: z.number().int().min(0),
  fork: z.object({ sourcePath: z.string(), sourceIncarnation: z.string(), offset: z.string(), subOffset: z.number().int().min(0) }).optional(),
  softDeleted: z.boolean(),
  forkCount: z.number().int().min(0),
});

/** The one decoder of stored stream state (a file or an etcd value): the boundary check. */
export function decodeStreamMeta(text: string): { ok: true; value: StreamMeta } | { ok: false; problem: string } {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    return { ok: false, problem: `not JSON: ${(e as Error).message}` };
  }
  const parsed = streamMetaSchema.safeParse(json);
  return parsed.success ? { ok: true, value: parsed.data as StreamMeta } : { ok: false, problem: parsed.error.message };
}

/** The stored form: the state without the store's revision. */
export function encodeStreamMeta(meta: StreamMeta | StoredStream): string {
  const { revision: _revision, ...state } = meta as StoredStream;
  return JSON.stringify(state);
}

/** `meta` with `patch` applied, as the next state of a commit. */
export function withChanges(meta: StoredStream, patch: Partial<StreamMeta>): StreamMeta {
  const { revision: _revision, ...state } = meta;
  return { ...state, ...patch };
}
