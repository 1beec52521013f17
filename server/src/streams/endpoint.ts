/**
 * The Durable Streams endpoint: `/v1/stream/<path>` on the broker's HTTP port
 * (create PUT, append/close POST, DELETE, HEAD, GET catch-up, long-poll, SSE;
 * docs/durable-streams.md). Each stream is a one-partition Runnel topic, one
 * record per append (JSON mode: per message), so the records are durable
 * (acks −1, fdatasync) before an append is answered and are readable through
 * the SDK, the HTTP API, SSE and groups. Every topic operation goes through
 * the request layer with the caller's context: the same authorization, quotas,
 * limits and error codes as the other routes.
 *
 * Header/offset rules are in protocol.ts; stream state beyond records in
 * stream-store.ts (a file per stream on a single node, etcd in a cluster).
 * Every state change is a compare-and-swap on the state the decision read
 * (`mutate`, `commit`): a loser re-reads and decides again, so brokers racing
 * on one stream cannot both win. Creates, deletes, closes, producer and
 * Stream-Seq appends of one stream are also serialized within a broker (the
 * protocol asks it for producers; it keeps retries rare); plain appends are
 * not, so they share group commit.
 */
import { randomBytes, createHash } from 'node:crypto';
import type { OpenAPIHono } from '@hono/zod-openapi';
import { assert, assertNever, encodeRecordBatch, forEachRecord, iterateBatches, RunnelError } from '@runnel/client/codec';
import type { HttpBrokerApi } from '../request/broker-api.ts';
import type { RequestContext } from '../request/request-context.ts';
import type { Limits } from '../limits.ts';
import { contextOf } from '../http/route-context.ts';
import { sizedResponse } from '../http/sized-body.ts';
import {
  checkProducer, etagOf, generationFrom, expiresAtOf, formatOffset, ifNoneMatchHits, isJsonType, isTrueHeader, jsonMessages, mediaType,
  nextCursor, parseExpiry, parseNonNegativeInt, parseOffset, parseProducer, sseDataLines, sseIsText, streamPathOf, type ProducerHeaders,
} from './protocol.ts';
import { MAX_STREAMS, withChanges, type StoredStream, type StreamChange, type StreamMeta, type StreamStore } from './stream-store.ts';
import { newProducerKey, protocolStateOf, runnelProducerId, unmappable } from './producer-mapping.ts';

export const STREAM_MOUNT = '/v1/stream/';

export interface StreamEndpointOptions {
  /** How long a long-poll waits for data before 204 (ms). */
  longPollTimeoutMs?: number;
  /** An SSE response is ended after this long so CDNs can collapse reconnects (ms). */
  sseMaxMs?: number;
  /** Most bytes of one catch-up response (more data: no Stream-Up-To-Date, read on). */
  maxReadBytes?: number;
}

/** Headers a browser may read and send (CORS). */
export const EXPOSED_HEADERS = [
  'stream-next-offset', 'stream-up-to-date', 'stream-closed', 'stream-cursor', 'stream-ttl', 'stream-expires-at', 'etag', 'location',
  'producer-epoch', 'producer-seq', 'producer-expected-seq', 'producer-received-seq', 'stream-sse-data-encoding', 'runnel-topic', 'content-type',
];
export const ALLOWED_REQUEST_HEADERS = [
  'content-type', 'stream-ttl', 'stream-expires-at', 'stream-closed', 'stream-seq', 'producer-id', 'producer-epoch', 'producer-seq',
  'stream-forked-from', 'stream-fork-offset', 'stream-fork-sub-offset', 'if-none-match', 'authorization', 'last-event-id',
];

const DEFAULT_CONTENT_TYPE = 'application/octet-stream';
const encoder = new TextEncoder();
const EMPTY = new Uint8Array(0);
const NO_CRC = { verifyCrc: false } as const;
/**
 * Compare-and-swap rounds of one state change before it fails with CLUSTER_UNAVAILABLE (retryable). Each lost
 * round means another writer changed the stream in between; too low fails requests under contention.
 */
const MAX_CAS_ATTEMPTS = 16;
/** Sliding TTL in a cluster: a broker shares an access once this fraction of the TTL passed since the shared one (at most 1 s). */
const SHARED_ACCESS_FRACTION = 0.1;
/** Refusals of an idempotent batch by the partition's producer table (log/producer-state.ts). */
const PRODUCER_REFUSALS: ReadonlySet<string> = new Set(['INVALID_PRODUCER_EPOCH', 'OUT_OF_ORDER_SEQUENCE_NUMBER', 'DUPLICATE_SEQUENCE_NUMBER']);

function baseHeaders(extra?: Record<string, string>): Headers {
  const h = new Headers(extra);
  // Browser hardening on every answer: no MIME sniffing, readable by fetch() from other origins.
  h.set('x-content-type-options', 'nosniff');
  h.set('cross-origin-resource-policy', 'cross-origin');
  return h;
}

function plain(status: number, code: string, message: string, extra?: Record<string, string>): Response {
  const h = baseHeaders(extra);
  h.set('content-type', 'application/json');
  h.set('cache-control', 'no-store');
  return new Response(JSON.stringify({ error: { code, message } }), { status, headers: h });
}

const badRequest = (message: string, extra?: Record<string, string>) => plain(400, 'INVALID_REQUEST', message, extra);
const notFound = (path: string) => plain(404, 'UNKNOWN_TOPIC_OR_PARTITION', `no stream at ${path.slice(0, 200)}`);
const gone = (message: string) => plain(410, 'OFFSET_OUT_OF_RANGE', message);
const conflict = (message: string, extra?: Record<string, string>) => plain(409, 'INVALID_REQUEST', message, extra);
const casExhausted = (path: string) => new RunnelError('CLUSTER_UNAVAILABLE', `stream ${path.slice(0, 200)}: its state kept changing (${MAX_CAS_ATTEMPTS} attempts); retry`);

/** `[v1,v2,...]` from stored JSON values, byte for byte: one copy, no string round trip. */
function jsonArrayOf(values: Uint8Array[]): Uint8Array<ArrayBuffer> {
  let n = 1 + Math.max(1, values.length);
  for (const v of values) n += v.length;
  const out = new Uint8Array(n);
  out[0] = 0x5b; // [
  let at = 1;
  for (let i = 0; i < values.length; i++) {
    if (i > 0) out[at++] = 0x2c; // ,
    out.set(values[i], at);
    at += values[i].length;
  }
  out[at] = 0x5d; // ]
  return out;
}

/** The protocol's producer answer headers. */
const producerHeaders = (epoch: number, seq: number): Record<string, string> => ({ 'producer-epoch': String(epoch), 'producer-seq': String(seq) });

interface ReadResult { values: Uint8Array[]; next: number; bytes: number }

export class StreamEndpoint {
  private readonly locks = new Map<string, Promise<unknown>>();
  /** Wakes live readers of an incarnation when it closes or goes away. */
  private readonly closeWaiters = new Map<string, Set<() => void>>();
  private readonly lastAccess = new Map<string, number>();
  /** Incarnations whose access time is being shared (one write in flight each). */
  private readonly sharingAccess = new Set<string>();
  private readonly longPollMs: number;
  private readonly sseMaxMs: number;
  private readonly maxRead: number;

  constructor(private readonly broker: HttpBrokerApi, private readonly store: StreamStore, private readonly limits: Limits, private readonly requiresPrivateCache: boolean, options: StreamEndpointOptions = {}) {
    this.longPollMs = options.longPollTimeoutMs ?? 10_000;
    this.sseMaxMs = options.sseMaxMs ?? 60_000;
    // As large as any log read (limits.maxReadBytes): the answer goes out as views of that read, not a copy.
    this.maxRead = options.maxReadBytes ?? limits.maxReadBytes;
    // Live readers end when their stream closes or goes, whichever broker changed it (a cluster's watch).
    store.onChange((_path, before, now) => {
      if (before === undefined) return;
      if (now === undefined || now.incarnation !== before.incarnation || (now.closed && !before.closed) || (now.softDeleted && !before.softDeleted)) this.wake(before.incarnation);
    });
  }

  register(app: OpenAPIHono): void {
    app.on(['GET', 'HEAD', 'PUT', 'POST', 'DELETE'], `${STREAM_MOUNT}*`, async (c) => {
      const req = c.req.raw;
      const path = streamPathOf(new URL(req.url).pathname, STREAM_MOUNT);
      if (path === null) return badRequest('no stream path');
      const ctx = contextOf(c);
      switch (req.method) {
        case 'PUT': return this.serial(path, () => this.create(ctx, path, req));
        case 'POST': {
          // Producer, Stream-Seq and close checks must see the previous append's outcome: serialized. A plain
          // append is not, so concurrent writers share the log's group commit (one fdatasync for many).
          const h = req.headers;
          const plainAppend = h.get('producer-id') === null && h.get('producer-epoch') === null && h.get('producer-seq') === null
            && h.get('stream-seq') === null && h.get('stream-closed') === null;
          return plainAppend ? this.append(ctx, path, req) : this.serial(path, () => this.append(ctx, path, req));
        }
        case 'DELETE': return this.serial(path, () => this.remove(ctx, path));
        case 'HEAD': return this.head(ctx, path);
        default: return this.read(ctx, path, req);
      }
    });
  }

  private serial<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.locks.get(key) ?? Promise.resolve();
    const run = prev.then(fn, fn);
    const tail = run.catch(() => undefined);
    this.locks.set(key, tail);
    void tail.then(() => { if (this.locks.get(key) === tail) this.locks.delete(key); });
    return run;
  }

  /**
   * The live stream at `path`, with lazy expiry; a Response when there is none. A stream this broker has not
   * seen yet is read from the store's authority (a cluster: created through another broker a moment ago).
   */
  private async live(ctx: RequestContext, path: string, touch: boolean): Promise<StoredStream | Response> {
    for (let attempt = 0; attempt < MAX_CAS_ATTEMPTS; attempt++) {
      let meta = this.store.get(path);
      if (meta === undefined && this.store.softDeletedAt(path) === undefined && this.store.isShared) {
        await this.store.refresh(path);
        meta = this.store.get(path);
      }
      if (meta === undefined) return this.store.softDeletedAt(path) ? gone(`stream ${path.slice(0, 200)} was deleted`) : notFound(path);
      const at = expiresAtOf(meta, this.lastAccessOf(meta));
      if (at === undefined || Date.now() < at) {
        if (touch) this.touch(meta);
        if (this.store.isShared) await this.served(ctx, meta);
        return meta;
      }
      if (await this.drop(ctx, meta, 'expire')) return notFound(path);
      // An access (or any change) another broker shared meanwhile: judge the expiry again on the stored state.
      await this.store.refresh(path);
    }
    throw casExhausted(path);
  }

  /**
   * Looks up the stream's topic if this broker does not serve it yet: a stream created through another broker
   * a moment ago is in the stream store before this broker's topic registry has synced (its own etcd watch).
   */
  private async served(ctx: RequestContext, meta: StoredStream): Promise<void> {
    try {
      this.broker.describeTopic(ctx, meta.topic);
    } catch (e) {
      if (!(e instanceof RunnelError && e.errorName === 'UNKNOWN_TOPIC_OR_PARTITION')) throw e;
      await this.broker.refreshTopic(ctx, meta.topic);
    }
  }

  /** The latest access this broker knows of: its own, or one another broker shared. */
  private lastAccessOf(meta: StoredStream): number {
    return Math.max(this.lastAccess.get(meta.incarnation) ?? meta.createdAtMs, meta.lastAccessMs ?? 0);
  }

  /**
   * Records a read or append for the sliding TTL. In a cluster it is shared (a compare-and-swap of
   * `lastAccessMs`, not awaited) once a tenth of the TTL has passed since the shared one, so every broker
   * expires the stream at the same time give or take that tenth (at most 1 s).
   */
  private touch(meta: StoredStream): void {
    const now = Date.now();
    this.lastAccess.set(meta.incarnation, now);
    if (!this.store.isShared || meta.ttlSeconds === undefined || this.sharingAccess.has(meta.incarnation)) return;
    if (now - (meta.lastAccessMs ?? meta.createdAtMs) < Math.min(1000, meta.ttlSeconds * 1000 * SHARED_ACCESS_FRACTION)) return;
    this.sharingAccess.add(meta.incarnation);
    // A lost race means another change (or access) came first; the next access shares again. Expiry compares
    // the stored revision, so an unshared access cannot be overtaken by a stale expiry on another broker.
    void this.store.commit([{ type: 'update', expected: meta, next: withChanges(meta, { lastAccessMs: now }) }])
      .catch(() => false)
      .finally(() => this.sharingAccess.delete(meta.incarnation));
  }

  /**
   * Applies `decide` to the stream's current state until its compare-and-swap wins: `decide` returns the next
   * state, null when nothing needs to change, or a Response that ends the request. 404 when the stream went.
   */
  private async mutate(path: string, incarnation: string, decide: (current: StoredStream) => StreamMeta | null | Response): Promise<StoredStream | Response> {
    for (let attempt = 0; attempt < MAX_CAS_ATTEMPTS; attempt++) {
      const current = this.store.get(path) ?? this.store.softDeletedAt(path);
      if (current === undefined || current.incarnation !== incarnation) return notFound(path);
      const next = decide(current);
      if (next === null || next instanceof Response) return next ?? current;
      if (await this.store.commit([{ type: 'update', expected: current, next }])) return this.store.byId(incarnation) ?? current;
      await this.store.refresh(path);
    }
    throw casExhausted(path);
  }

  /** Next position of a stream (its tail). */
  private tail(ctx: RequestContext, meta: StreamMeta): number {
    return meta.base + this.broker.describeTopic(ctx, meta.topic).partitions[0].highWatermark;
  }

  private wake(incarnation: string): void {
    const set = this.closeWaiters.get(incarnation);
    if (!set) return;
    this.closeWaiters.delete(incarnation);
    for (const fn of set) fn();
  }

  // ---- create ---------------------------------------------------------------------------------

  /**
   * PUT: a create decided on the state as read, committed only if the path is still free (and a fork's source
   * unchanged); a lost race re-reads and decides again, so it ends as the winner's 200 or 409.
   */
  private async create(ctx: RequestContext, path: string, req: Request): Promise<Response> {
    const body = new Uint8Array(await req.arrayBuffer());
    for (let attempt = 0; attempt < MAX_CAS_ATTEMPTS; attempt++) {
      const answer = await this.createOnce(ctx, path, req, body);
      if (answer !== 'retry') return answer;
      await this.store.refresh(path);
      const forkFrom = req.headers.get('stream-forked-from');
      const sourcePath = forkFrom === null ? null : this.forkSourcePath(forkFrom);
      if (sourcePath) await this.store.refresh(sourcePath);
    }
    throw casExhausted(path);
  }

  private forkSourcePath(forkFrom: string): string | null {
    return forkFrom.startsWith(STREAM_MOUNT) ? streamPathOf(forkFrom, STREAM_MOUNT) : forkFrom.replace(/^\/+/, '');
  }

  private async createOnce(ctx: RequestContext, path: string, req: Request, body: Uint8Array): Promise<Response | 'retry'> {
    const h = req.headers;
    const expiry = parseExpiry(h.get('stream-ttl'), h.get('stream-expires-at'));
    if (!expiry.ok) return badRequest(expiry.reason);
    const closed = isTrueHeader(h.get('stream-closed'));
    const forkFrom = h.get('stream-forked-from');
    const requestedType = h.get('content-type');

    if (this.store.softDeletedAt(path)) return conflict(`stream ${path.slice(0, 200)} was deleted but still has forks`);
    const existing = this.store.get(path);
    if (existing !== undefined) {
      const live = await this.live(ctx, path, false);
      if (live instanceof Response && live.status !== 404) return live;
    }
    const current = this.store.get(path);

    let contentType = requestedType ?? DEFAULT_CONTENT_TYPE;
    let base = 0;
    let generation = generationFrom(randomBytes(8));
    let fork: StreamMeta['fork'];
    let source: StoredStream | undefined;
    let inheritedPrefix: Uint8Array | undefined;
    let ttlSeconds = expiry.value.ttlSeconds;
    let expiresAtMs = expiry.value.expiresAtMs;

    if (forkFrom === null && (h.get('stream-fork-offset') !== null || h.get('stream-fork-sub-offset') !== null)) {
      return badRequest('Stream-Fork-Offset and Stream-Fork-Sub-Offset need Stream-Forked-From');
    }
    if (forkFrom !== null) {
      const sourcePath = this.forkSourcePath(forkFrom);
      if (sourcePath === null || sourcePath.length === 0) return badRequest('Stream-Forked-From names no stream');
      if (this.store.softDeletedAt(sourcePath) && !this.store.get(sourcePath)) return conflict('the fork source was deleted');
      const src = await this.live(ctx, sourcePath, false);
      if (src instanceof Response) return src.status === 410 ? conflict('the fork source was deleted') : src;
      source = src;
      if (requestedType !== null && mediaType(requestedType) !== mediaType(src.contentType)) return conflict('a fork has its source\'s content type');
      contentType = src.contentType;
      generation = src.generation;
      const srcTail = this.tail(ctx, src);
      let anchor = srcTail;
      const offsetHeader = h.get('stream-fork-offset');
      if (offsetHeader !== null) {
        const o = parseOffset(offsetHeader.trim());
        if (o.kind === 'start' || (o.kind === 'position' && o.position === 0)) anchor = 0;
        else if (o.kind === 'position' && o.generation === src.generation) anchor = o.position;
        else return badRequest('Stream-Fork-Offset is not an offset of the source');
        if (anchor > srcTail) return badRequest('Stream-Fork-Offset is past the source\'s tail');
      }
      const subHeader = h.get('stream-fork-sub-offset');
      let sub = 0;
      if (subHeader !== null) {
        const n = parseNonNegativeInt(subHeader.trim());
        if (n === null) return badRequest('Stream-Fork-Sub-Offset must be a non-negative integer');
        sub = n;
      }
      base = anchor;
      if (sub > 0) {
        if (isJsonType(contentType)) {
          if (anchor + sub > srcTail) return badRequest('Stream-Fork-Sub-Offset is past the source\'s data');
          base = anchor + sub;
        } else {
          const at = await this.readRange(ctx, src, anchor, 1, anchor + 1);
          if (at.values.length === 0 || sub > at.values[0].length) return badRequest('Stream-Fork-Sub-Offset is past the next data boundary');
          inheritedPrefix = at.values[0].subarray(0, sub);
        }
      }
      fork = { sourcePath, sourceIncarnation: src.incarnation, offset: formatOffset(src.generation, anchor), subOffset: sub };
      if (ttlSeconds === undefined && expiresAtMs === undefined) {
        ttlSeconds = src.ttlSeconds;
        expiresAtMs = src.expiresAtMs;
      }
    }

    if (current !== undefined) {
      const same = mediaType(current.contentType) === mediaType(contentType)
        && current.ttlSeconds === ttlSeconds && current.expiresAtMs === expiresAtMs && current.closed === closed
        && (current.fork?.sourcePath ?? null) === (fork?.sourcePath ?? null) && (current.fork?.offset ?? null) === (fork?.offset ?? null)
        && (current.fork?.subOffset ?? 0) === (fork?.subOffset ?? 0);
      if (!same) return conflict(`stream ${path.slice(0, 200)} exists with another configuration`);
      const headers = this.metaHeaders(current, this.tail(ctx, current));
      return new Response(null, { status: 200, headers });
    }
    if (this.store.size >= MAX_STREAMS) return plain(429, 'LIMIT_EXCEEDED', `${this.store.isShared ? 'the cluster' : 'this broker'} holds ${MAX_STREAMS} streams`);

    let values: Uint8Array[] = [];
    if (body.length > 0) {
      if (isJsonType(contentType)) {
        const msgs = jsonMessages(body, true);
        if (!msgs.ok) return badRequest(msgs.reason);
        values = msgs.value.map((m) => encoder.encode(m));
      } else values = [body];
    }
    if (inheritedPrefix !== undefined) values = [inheritedPrefix, ...values];

    const incarnation = randomBytes(6).toString('hex');
    const topic = `ds.${createHash('sha256').update(path).digest('hex').slice(0, 24)}.${incarnation}`;
    await this.broker.createTopic(ctx, { name: topic, partitions: 1 });
    const meta: StreamMeta = {
      path, generation, incarnation, topic, contentType, createdAtMs: Date.now(), closed, producerKey: newProducerKey(), base, softDeleted: false, forkCount: 0,
      ...(ttlSeconds !== undefined ? { ttlSeconds } : {}), ...(expiresAtMs !== undefined ? { expiresAtMs } : {}), ...(fork ? { fork } : {}),
    };
    try {
      if (values.length > 0) await this.produce(ctx, meta, values);
    } catch (e) {
      await this.broker.deleteTopic(ctx, topic).catch(() => undefined);
      throw e;
    }
    const changes: StreamChange[] = [{ type: 'create', meta }];
    if (source) changes.push({ type: 'update', expected: source, next: withChanges(source, { forkCount: source.forkCount + 1 }) });
    let won: boolean;
    try {
      won = await this.store.commit(changes);
    } catch (e) {
      // etcd unreachable: the create may have committed (its answer was lost), so the topic may be the stream's.
      if (!this.store.isShared) await this.broker.deleteTopic(ctx, topic).catch(() => undefined);
      throw e;
    }
    if (!won) {
      // Another create took the path (or the source changed) first: this topic is nobody's.
      await this.broker.deleteTopic(ctx, topic).catch(() => undefined);
      return 'retry';
    }
    this.lastAccess.set(incarnation, Date.now());
    const headers = this.metaHeaders(meta, meta.base + values.length);
    headers.set('location', new URL(req.url).href);
    return new Response(null, { status: 201, headers });
  }

  private metaHeaders(meta: StreamMeta, tail: number): Headers {
    const h = baseHeaders({ 'content-type': meta.contentType, 'stream-next-offset': formatOffset(meta.generation, tail), 'runnel-topic': meta.topic });
    if (meta.closed) h.set('stream-closed', 'true');
    return h;
  }

  /** Appends `values` as one batch; with `producer`, the batch carries its tuple and the partition de-duplicates it. */
  private async produce(ctx: RequestContext, meta: StreamMeta, values: Uint8Array[], producer?: { id: number; epoch: number; seq: number }): Promise<{ next: number; duplicate: boolean }> {
    const records = values.map((value) => ({ value }));
    const batch = producer === undefined
      ? encodeRecordBatch({ baseTimestamp: Date.now(), records })
      : encodeRecordBatch({ baseTimestamp: Date.now(), records, producerId: producer.id, producerEpoch: producer.epoch, baseSequence: producer.seq });
    // The endpoint claims the stream's derived id itself (producer-mapping.ts); no client is ever issued one.
    const result = await this.broker.produce(ctx, meta.topic, 0, batch, -1, producer === undefined ? undefined : { claimed: new Set([producer.id]) });
    return { next: meta.base + result.lastOffset + 1, duplicate: result.duplicate };
  }

  /** The stream's producer key; a stream written before keys existed gets one now (durable before use; one wins a race). */
  private async producerKeyOf(meta: StoredStream): Promise<string | Response> {
    if (meta.producerKey !== undefined) return meta.producerKey;
    const keyed = await this.mutate(meta.path, meta.incarnation, (cur) => (cur.producerKey === undefined ? withChanges(cur, { producerKey: newProducerKey() }) : null));
    if (keyed instanceof Response) return keyed;
    assert(keyed.producerKey !== undefined, 'a committed producer key is stored');
    return keyed.producerKey;
  }

  /**
   * Claims Stream-Seq `seq` before the append is written (a compare-and-swap of `lastStreamSeq`), so two
   * brokers appending with one Stream-Seq cannot both write: the loser sees the winner's and answers 409.
   * Returns the previous value for `releaseStreamSeq`, or the refusal.
   */
  private async claimStreamSeq(ctx: RequestContext, meta: StoredStream, seq: string): Promise<{ previous: string | undefined } | Response> {
    let previous: string | undefined;
    const claimed = await this.mutate(meta.path, meta.incarnation, (cur) => {
      if (cur.closed) return conflict('the stream is closed', { 'stream-closed': 'true', 'stream-next-offset': formatOffset(cur.generation, this.tail(ctx, cur)) });
      if (cur.lastStreamSeq !== undefined && seq <= cur.lastStreamSeq) return conflict(`Stream-Seq '${seq.slice(0, 80)}' is not after '${cur.lastStreamSeq.slice(0, 80)}'`);
      previous = cur.lastStreamSeq;
      return withChanges(cur, { lastStreamSeq: seq });
    });
    return claimed instanceof Response ? claimed : { previous };
  }

  /** Gives back a claimed Stream-Seq whose append was not written (if nothing claimed a later one since). */
  private async releaseStreamSeq(meta: StoredStream, seq: string, previous: string | undefined): Promise<void> {
    await this.mutate(meta.path, meta.incarnation, (cur) => {
      if (cur.lastStreamSeq !== seq) return null;
      const { lastStreamSeq: _claimed, ...rest } = withChanges(cur, {});
      return previous === undefined ? rest : { ...rest, lastStreamSeq: previous };
    });
  }

  // ---- append / close -------------------------------------------------------------------------

  private async append(ctx: RequestContext, path: string, req: Request): Promise<Response> {
    // In a cluster the close may have been committed through another broker a moment ago (before this broker's
    // watch delivered it): a linearizable read first, so an append that starts after a close's answer is refused.
    if (this.store.isShared) await this.store.refresh(path);
    const found = await this.live(ctx, path, true);
    if (found instanceof Response) return found;
    const meta = found;
    const h = req.headers;
    const producer = parseProducer(h.get('producer-id'), h.get('producer-epoch'), h.get('producer-seq'));
    if (!producer.ok) return badRequest(producer.reason);
    const p = producer.value;
    const closing = isTrueHeader(h.get('stream-closed'));
    const body = new Uint8Array(await req.arrayBuffer());
    if (body.length === 0 && !closing) return badRequest('an append needs a body (or Stream-Closed: true to close)');

    if (meta.closed) {
      const tail = formatOffset(meta.generation, this.tail(ctx, meta));
      const closedHeaders = { 'stream-closed': 'true', 'stream-next-offset': tail };
      const by = meta.closedBy;
      if (p !== null && by !== undefined && by.id === p.id && by.epoch === p.epoch && by.seq === p.seq) {
        return new Response(null, { status: 204, headers: baseHeaders({ ...closedHeaders, ...producerHeaders(p.epoch, p.seq) }) });
      }
      if (body.length === 0) return new Response(null, { status: 204, headers: baseHeaders(closedHeaders) });
      return conflict('the stream is closed', closedHeaders);
    }
    const type = h.get('content-type');
    if (body.length > 0) {
      if (type === null) return badRequest('an append with a body needs a Content-Type');
      if (mediaType(type) !== mediaType(meta.contentType)) return conflict(`the stream's content type is ${meta.contentType}`);
    }
    let runnelId: number | undefined;
    if (p !== null) {
      const refused = unmappable(p);
      if (refused !== null) return badRequest(refused);
      const key = await this.producerKeyOf(meta);
      if (key instanceof Response) return key;
      runnelId = runnelProducerId(key, p.id);
      const refusal = await this.producerRefusal(ctx, meta, p, runnelId, closing);
      if (refusal !== null) return refusal;
    }
    let values: Uint8Array[] = [];
    if (body.length > 0) {
      if (isJsonType(meta.contentType)) {
        const msgs = jsonMessages(body, false);
        if (!msgs.ok) return badRequest(msgs.reason);
        values = msgs.value.map((m) => encoder.encode(m));
      } else values = [body];
    }
    const streamSeq = h.get('stream-seq');
    let seqClaim: { previous: string | undefined } | undefined;
    if (streamSeq !== null) {
      const claim = await this.claimStreamSeq(ctx, meta, streamSeq);
      if (claim instanceof Response) return claim;
      seqClaim = claim;
    }
    let next = this.tail(ctx, meta);
    if (values.length > 0) {
      const tuple = p !== null && runnelId !== undefined ? { id: runnelId, epoch: p.epoch, seq: p.seq } : undefined;
      let written: { next: number; duplicate: boolean };
      try {
        written = await this.produce(ctx, meta, values, tuple);
      } catch (e) {
        if (streamSeq !== null && seqClaim !== undefined) await this.releaseStreamSeq(meta, streamSeq, seqClaim.previous);
        // The leader's partition refused the batch by its producer table: an append of this producer reached it
        // between our read and this write (appends are serialized per stream only within one broker; another
        // broker, or a new leader, may have taken one). The table as it is now shapes the answer.
        if (p === null || runnelId === undefined || !(e instanceof RunnelError) || !PRODUCER_REFUSALS.has(e.errorName)) throw e;
        const refusal = await this.producerRefusal(ctx, meta, p, runnelId, closing);
        if (refusal !== null) return refusal;
        throw e;
      }
      next = written.next;
      if (written.duplicate && p !== null) {
        // Only a race the per-stream serialization rules out (or a cluster leader change) gets here: still a duplicate.
        return new Response(null, { status: 204, headers: this.duplicateHeaders(ctx, meta, p.epoch, p.seq) });
      }
    }
    let closedNow = false;
    if (closing) {
      const closedState = await this.closeStream(meta, p);
      if (closedState instanceof Response) return closedState;
      closedNow = true;
    }
    const headers = baseHeaders({ 'stream-next-offset': formatOffset(meta.generation, next) });
    if (closedNow) headers.set('stream-closed', 'true');
    if (p !== null) for (const [k, v] of Object.entries(producerHeaders(p.epoch, p.seq))) headers.set(k, v);
    // A close-only request answers 204 like any close; 200 is for a producer's accepted data.
    return new Response(null, { status: p !== null && values.length > 0 ? 200 : 204, headers });
  }

  /**
   * The protocol's answer to an append of producer `p` that the leader's producer table does not accept (403
   * fenced, 400 bad epoch start, 409 gap, 204 duplicate), or null to append it. The table is the partition
   * leader's (asked of it in a cluster), rebuilt from the log; `producers` only for streams written before that.
   */
  private async producerRefusal(ctx: RequestContext, meta: StoredStream, p: ProducerHeaders, runnelId: number, closing: boolean): Promise<Response | null> {
    const state = protocolStateOf(await this.broker.producerState(ctx, meta.topic, 0, runnelId)) ?? meta.producers?.[p.id];
    const verdict = checkProducer(state, p);
    switch (verdict.kind) {
      case 'stale-epoch': return plain(403, 'INVALID_PRODUCER_EPOCH', 'a newer producer epoch fenced this one', { 'producer-epoch': String(verdict.currentEpoch) });
      case 'bad-epoch-start': return badRequest('a new producer epoch starts at Producer-Seq 0');
      case 'gap': return plain(409, 'OUT_OF_ORDER_SEQUENCE_NUMBER', 'producer sequence gap', { 'producer-expected-seq': String(verdict.expected), 'producer-received-seq': String(verdict.received) });
      case 'duplicate': {
        const headers = this.duplicateHeaders(ctx, meta, p.epoch, verdict.lastSeq);
        // A retry of a final append whose records are durable but whose close was not (a crash between the
        // two writes): the close is the rest of that request, done now.
        if (closing && p.seq === verdict.lastSeq) {
          const closedState = await this.closeStream(meta, p);
          if (closedState instanceof Response) return closedState;
          headers.set('stream-closed', 'true');
        }
        return new Response(null, { status: 204, headers });
      }
      case 'accept': return null;
      default: return assertNever(verdict);
    }
  }

  /** Headers of a 204 to a producer's duplicate append: the stream's tail and the producer's epoch and highest sequence. */
  private duplicateHeaders(ctx: RequestContext, meta: StreamMeta, epoch: number, lastSeq: number): Headers {
    return baseHeaders({ 'stream-next-offset': formatOffset(meta.generation, this.tail(ctx, meta)), ...producerHeaders(epoch, lastSeq) });
  }

  /**
   * Closes the stream (durable before it resolves), remembering the closing producer tuple; live readers on
   * every broker are woken by the change (the store's listeners). Already closed: nothing to change.
   */
  private async closeStream(meta: StoredStream, p: { id: string; epoch: number; seq: number } | null): Promise<StoredStream | Response> {
    return this.mutate(meta.path, meta.incarnation, (cur) => {
      if (cur.closed) return null;
      return withChanges(cur, { closed: true, ...(p !== null ? { closedBy: { id: p.id, epoch: p.epoch, seq: p.seq } } : {}) });
    });
  }

  // ---- delete ---------------------------------------------------------------------------------

  private async remove(ctx: RequestContext, path: string): Promise<Response> {
    for (let attempt = 0; attempt < MAX_CAS_ATTEMPTS; attempt++) {
      const found = await this.live(ctx, path, false);
      if (found instanceof Response) return found;
      if (await this.drop(ctx, found, 'delete')) return new Response(null, { status: 204, headers: baseHeaders() });
      await this.store.refresh(path);
      if (found.fork) await this.store.refresh(found.fork.sourcePath);
    }
    throw casExhausted(path);
  }

  /**
   * Deletes a stream, or soft-deletes it while forks read it; cascades up the fork chain (a soft-deleted source
   * whose last fork goes), all in one commit. False when the commit lost a race (re-read, decide again).
   *
   * NB: a DELETE removes the topics first, under the caller's grants (an unauthorized caller changes nothing),
   * then the state: a lost race repeats both, harmlessly (the state still names a doomed stream). An expiry
   * commits first and removes the topics after: a racing access that kept the stream alive must win without
   * its records being gone. A crash in between leaves the topic without a stream (stream-store.ts).
   */
  private async drop(ctx: RequestContext, meta: StoredStream, why: 'delete' | 'expire'): Promise<boolean> {
    if (meta.forkCount > 0) return this.store.commit([{ type: 'update', expected: meta, next: withChanges(meta, { softDeleted: true }) }]);
    const changes: StreamChange[] = [{ type: 'remove', expected: meta }];
    const removed = [meta];
    for (let child: StoredStream = meta; child.fork !== undefined;) {
      const src = this.store.byId(child.fork.sourceIncarnation);
      if (src === undefined) break;
      const forkCount = Math.max(0, src.forkCount - 1);
      if (!(src.softDeleted && forkCount === 0)) {
        changes.push({ type: 'update', expected: src, next: withChanges(src, { forkCount }) });
        break;
      }
      changes.push({ type: 'remove', expected: src });
      removed.push(src);
      child = src;
    }
    if (why === 'delete') await this.deleteTopics(ctx, removed);
    if (!(await this.store.commit(changes))) return false;
    if (why === 'expire') await this.deleteTopics(ctx, removed);
    for (const m of removed) this.lastAccess.delete(m.incarnation);
    return true;
  }

  private async deleteTopics(ctx: RequestContext, streams: readonly StoredStream[]): Promise<void> {
    for (const m of streams) {
      await this.broker.deleteTopic(ctx, m.topic).catch((e: unknown) => {
        if (!(e instanceof RunnelError && e.errorName === 'UNKNOWN_TOPIC_OR_PARTITION')) throw e;
      });
    }
  }

  // ---- HEAD -----------------------------------------------------------------------------------

  private async head(ctx: RequestContext, path: string): Promise<Response> {
    const found = await this.live(ctx, path, false);
    if (found instanceof Response) return new Response(null, { status: found.status, headers: found.headers });
    const headers = this.metaHeaders(found, this.tail(ctx, found));
    headers.set('cache-control', 'no-store');
    if (found.ttlSeconds !== undefined) headers.set('stream-ttl', String(found.ttlSeconds));
    if (found.expiresAtMs !== undefined) headers.set('stream-expires-at', new Date(found.expiresAtMs).toISOString());
    return new Response(null, { status: 200, headers });
  }

  // ---- reads ----------------------------------------------------------------------------------

  /** Record values from `from` (a position) up to `limit`, at most ~maxBytes (at least one record). */
  private async readRange(ctx: RequestContext, meta: StreamMeta, from: number, maxBytes: number, limit = Infinity): Promise<ReadResult> {
    const values: Uint8Array[] = [];
    let pos = from;
    let bytes = 0;
    if (pos < meta.base && meta.fork) {
      const src = this.store.byId(meta.fork.sourceIncarnation);
      if (!src) throw new RunnelError('OFFSET_OUT_OF_RANGE', 'the fork source is gone');
      const inherited = await this.readRange(ctx, src, pos, maxBytes, Math.min(limit, meta.base));
      values.push(...inherited.values);
      pos = inherited.next;
      bytes = inherited.bytes;
      if (pos < meta.base || bytes >= maxBytes) return { values, next: pos, bytes };
    }
    while (bytes < maxBytes && pos < limit) {
      const own = pos - meta.base;
      const fetched = await this.broker.fetch(ctx, meta.topic, 0, own, Math.max(maxBytes - bytes, 1));
      if (own < fetched.logStartOffset) throw new RunnelError('OFFSET_OUT_OF_RANGE', 'the offset is no longer retained');
      let got = 0;
      // The log reader served these bytes only after their CRC passed (log-reader.ts: verified segment or
      // CRC-on-read): checking it again here cost a JS CRC-32C pass over every byte read.
      for (const item of iterateBatches(fetched.batches, NO_CRC)) {
        if (!item.ok) throw new RunnelError(item.code, item.message);
        const { at, header } = item.value;
        forEachRecord(fetched.batches, at, header, (r) => {
          const p = r.offset + meta.base;
          if (r.offset < pos - meta.base || r.offset >= fetched.highWatermark || p >= limit) return;
          if (bytes >= maxBytes && values.length > 0) return;
          if (p !== pos) return;
          // A view, not a copy: the read buffer is this call's own (a fresh file read), copied once into the body.
          const v = r.valueLength < 0 ? EMPTY : fetched.batches.subarray(r.valueStart, r.valueStart + r.valueLength);
          values.push(v);
          bytes += v.length;
          pos = p + 1;
          got++;
        });
      }
      if (got === 0) break;
    }
    return { values, next: pos, bytes };
  }

  private async waitForData(ctx: RequestContext, meta: StreamMeta, position: number, timeoutMs: number, signal?: AbortSignal): Promise<void> {
    const stop = new AbortController();
    const onAbort = () => stop.abort();
    signal?.addEventListener('abort', onAbort);
    let set = this.closeWaiters.get(meta.incarnation);
    if (!set) this.closeWaiters.set(meta.incarnation, (set = new Set()));
    set.add(onAbort);
    try {
      await this.broker.waitForRecords(ctx, meta.topic, 0, position - meta.base, timeoutMs, stop.signal);
    } finally {
      signal?.removeEventListener('abort', onAbort);
      this.closeWaiters.get(meta.incarnation)?.delete(onAbort);
    }
  }

  private async read(ctx: RequestContext, path: string, req: Request): Promise<Response> {
    const url = new URL(req.url);
    const live = url.searchParams.get('live');
    if (live !== null && live !== 'long-poll' && live !== 'sse') return badRequest(`live must be long-poll or sse, got '${live.slice(0, 40)}'`);
    const offsetParam = url.searchParams.get('offset');
    if (live !== null && offsetParam === null) return badRequest('a live read needs ?offset=');
    if (url.searchParams.getAll('offset').length > 1) return badRequest('one offset per read');
    const offset = parseOffset(offsetParam ?? undefined);
    if (offset.kind === 'invalid') return badRequest(offset.reason);
    const found = await this.live(ctx, path, true);
    if (found instanceof Response) return found;
    let meta = found;
    let tail = this.tail(ctx, meta);
    let position: number;
    if (offset.kind === 'start') position = 0;
    else if (offset.kind === 'now') position = tail;
    else if (offset.generation !== meta.generation && offset.position > 0) return gone('the offset belongs to a deleted stream that had this URL');
    else if (offset.position > tail) return badRequest('the offset is past the stream\'s tail');
    else position = offset.position;

    if (live === 'sse') return this.sse(ctx, meta, position, url.searchParams.get('cursor') ?? undefined, req.signal);

    const cursor = () => nextCursor(Date.now(), url.searchParams.get('cursor') ?? undefined, Math.random);
    if (offset.kind === 'now' && live === null) {
      const h = this.readHeaders(meta, tail, tail);
      h.set('cache-control', 'no-store');
      return new Response(isJsonType(meta.contentType) ? '[]' : new Uint8Array(0), { status: 200, headers: h });
    }
    let result = position < tail ? await this.readRange(ctx, meta, position, this.maxRead) : { values: [], next: position, bytes: 0 };
    if (result.values.length === 0 && live === 'long-poll' && !meta.closed) {
      await this.waitForData(ctx, meta, position, this.longPollMs, req.signal);
      // Woken by new data, a close or the stream's end, on this broker or another: read its state again.
      const now = this.store.get(path);
      if (now?.incarnation !== meta.incarnation) return notFound(path);
      meta = now;
      tail = this.tail(ctx, meta);
      if (position < tail) result = await this.readRange(ctx, meta, position, this.maxRead);
    }
    tail = Math.max(tail, result.next);
    if (live === 'long-poll' && result.values.length === 0) {
      const h = this.readHeaders(meta, result.next, tail);
      h.set('cache-control', 'no-store');
      if (!meta.closed) h.set('stream-cursor', cursor());
      return new Response(null, { status: 204, headers: h });
    }
    const h = this.readHeaders(meta, result.next, tail);
    if (live === 'long-poll' || !meta.closed) h.set('stream-cursor', cursor());
    const etag = etagOf(meta.incarnation, formatOffset(meta.generation, position), formatOffset(meta.generation, result.next), meta.closed && result.next >= tail);
    h.set('etag', etag);
    // Chunks with data are cacheable; the empty answer at the tail is not (protocol §10.1: more data or the
    // close is found by asking that offset again — a cached empty 200 would hide both for max-age).
    h.set('cache-control', result.values.length === 0 ? 'no-store' : `${this.requiresPrivateCache ? 'private' : 'public'}, max-age=60, stale-while-revalidate=300`);
    if (ifNoneMatchHits(req.headers.get('if-none-match'), etag)) return new Response(null, { status: 304, headers: h });
    return sizedResponse(isJsonType(meta.contentType) ? [jsonArrayOf(result.values)] : result.values, { status: 200, headers: h });
  }

  private readHeaders(meta: StreamMeta, next: number, tail: number): Headers {
    const h = baseHeaders({ 'content-type': meta.contentType, 'stream-next-offset': formatOffset(meta.generation, next) });
    if (next >= tail) {
      h.set('stream-up-to-date', 'true');
      if (meta.closed) h.set('stream-closed', 'true');
    }
    return h;
  }

  private sse(ctx: RequestContext, meta: StoredStream, start: number, clientCursor: string | undefined, signal: AbortSignal): Response {
    const text = sseIsText(meta.contentType);
    const json = isJsonType(meta.contentType);
    const deadline = Date.now() + this.sseMaxMs;
    let position = start;
    let cursor = clientCursor;
    let sentControl = false;
    const keepAliveMs = 15_000;
    const control = (tail: number): string => {
      const atTail = position >= tail;
      const closedNow = meta.closed && atTail;
      const body: Record<string, unknown> = { streamNextOffset: formatOffset(meta.generation, position) };
      if (!closedNow) {
        cursor = nextCursor(Date.now(), cursor, Math.random);
        body.streamCursor = cursor;
      }
      if (atTail) body.upToDate = true;
      if (closedNow) body.streamClosed = true;
      return `event: control\n${sseDataLines(JSON.stringify(body))}\n`;
    };
    const stream = new ReadableStream<Uint8Array>({
      pull: async (controller) => {
        try {
          for (;;) {
            const now = this.store.byId(meta.incarnation);
            if (signal.aborted || now === undefined) { controller.close(); return; }
            // The state as it is now: a close committed through any broker ends the response.
            meta = now;
            let tail = this.tail(ctx, meta);
            if (position < tail) {
              const r = await this.readRange(ctx, meta, position, this.maxRead);
              position = r.next;
              tail = Math.max(tail, this.tail(ctx, meta));
              let payload: string;
              if (json) payload = `[${r.values.map((v) => Buffer.from(v).toString('utf8')).join(',')}]`;
              else if (text) payload = Buffer.concat(r.values).toString('utf8');
              else payload = Buffer.concat(r.values).toString('base64');
              const out = `event: data\n${sseDataLines(payload)}\n${control(tail)}`;
              sentControl = true;
              controller.enqueue(encoder.encode(out));
              if (meta.closed && position >= tail) controller.close();
              return;
            }
            if (meta.closed) {
              controller.enqueue(encoder.encode(control(tail)));
              controller.close();
              return;
            }
            if (!sentControl) {
              sentControl = true;
              controller.enqueue(encoder.encode(control(tail)));
              return;
            }
            const left = deadline - Date.now();
            if (left <= 0) { controller.close(); return; }
            const before = position;
            await this.waitForData(ctx, meta, position, Math.min(left, keepAliveMs), signal);
            meta = this.store.byId(meta.incarnation) ?? meta;
            if (position === before && this.tail(ctx, meta) <= position && !meta.closed && Date.now() < deadline && !signal.aborted) {
              controller.enqueue(encoder.encode(': keep-alive\n\n'));
              return;
            }
          }
        } catch (e) {
          controller.error(e);
        }
      },
    });
    const h = baseHeaders({ 'content-type': 'text/event-stream', 'cache-control': 'no-cache, no-store' });
    if (!text) h.set('stream-sse-data-encoding', 'base64');
    return new Response(stream, { status: 200, headers: h });
  }
}
