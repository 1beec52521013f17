/**
 * Group consumer (`@runnel/client/group`, Node services): joins a
 * server-side consumer group (docs/groups.md), heartbeats, consumes only its
 * assigned partitions from the group's committed offsets and commits with
 * its generation after the handler. A subpath so the browser bundle does not
 * carry it.
 *
 * Each assigned partition runs as its own Subscription (the same decode,
 * offset tracking and credit as `client.subscribe`) whose offset store is
 * the group: `getOffsets` answers from one `offsetFetch` per rebalance,
 * `putOffsets` queues the offset for an `offsetCommit`.
 *
 * Invariant (fencing): an offset is committed only for a partition the
 * member has owned continuously since its subscription started, with the
 * current generation. A revoked partition is stopped at once; what it
 * processed but had not committed is processed again by the new owner
 * (at-least-once across rebalances, docs/client.md).
 */
import { RunnelError, errorNameOf } from './codec/error-codes.ts';
import { groupFrames } from './codec/frame-schema.ts';
import type { CommittedOffset, GroupAssignmentFrame, OffsetCommitAckFrame, OffsetFetchResultFrame } from './codec/protocol.ts';
import type { RunnelClient } from './client.ts';
import type { Connection } from './connection.ts';
import { Subscription, type BatchHandler, type ConsumerDeps, type Handler } from './consumer.ts';
import { Emitter } from './events.ts';
import { planAssignment, type TopicPartition } from './group-assignment.ts';
import { GROUP_JOIN_RETRY_MS, OFFSET_FETCH_RETRY_MS, validateGroupTimeouts } from './limits.ts';
import type { OffsetStore, StoredOffset } from './storage.ts';
import { toTopic, type TopicRef } from './topic.ts';
import { VERBOSE } from '#verbose';

export type { TopicPartition } from './group-assignment.ts';

export interface GroupConsumerOptions<T> {
  group: string;
  topics: TopicRef<any, T>[];
  /** Called per record, in offset order per partition (partitions run concurrently). */
  handler?: Handler<T>;
  /** Kafka's eachBatch: the records of one received frame of one partition. Use instead of `handler`. */
  eachBatch?: BatchHandler<T>;
  /** No heartbeat for this long and the broker removes the member (clamped by the broker). Default 10 s. */
  sessionTimeoutMs?: number;
  /** Heartbeat period, < sessionTimeoutMs. Default sessionTimeoutMs / 3 (at least 10 ms; limits.ts). */
  heartbeatIntervalMs?: number;
  /** Where a partition starts without a committed offset (Kafka's auto.offset.reset). Default 'latest'. */
  reset?: 'earliest' | 'latest';
  /** Commit after every handled frame (default true); false = only on `commit()`, leave, and before giving up nothing. */
  autoCommit?: boolean;
  /** Abort = leave the group (after committing what was processed). */
  signal?: AbortSignal;
}

export interface RebalanceEvent {
  generationId: number;
  memberId: string;
  /** Everything this member owns in `generationId`. */
  assignment: TopicPartition[];
  added: TopicPartition[];
  /** Stopped; offsets processed but not yet committed will be processed again by the new owner. */
  revoked: TopicPartition[];
}

export interface CommitEvent { generationId: number; offsets: CommittedOffset[] }

export interface GroupConsumerEvents { rebalance: RebalanceEvent; commit: CommitEvent; error: RunnelError }

/** One partition owned by this member, from the generation it was started in until revoked. */
interface Owned extends TopicPartition { sub: Subscription<any> | null }

const key = (topic: string, partition: number): string => `${topic}/${partition}`;
const FENCED = ['ILLEGAL_GENERATION', 'UNKNOWN_MEMBER_ID', 'REBALANCE_IN_PROGRESS', 'NOT_CONNECTED'];

/**
 * A member of a consumer group. `ready` resolves once the first assignment's
 * partitions are subscribed; `closed` settles after leaving (rejects on a
 * handler error, after committing what completed and leaving).
 */
export class GroupConsumer<T> extends Emitter<GroupConsumerEvents> {
  readonly group: string;
  readonly ready: Promise<void>;
  readonly closed: Promise<void>;
  #conn: Connection;
  #deps: ConsumerDeps;
  #options: GroupConsumerOptions<T>;
  #timeouts: { sessionTimeoutMs: number; heartbeatIntervalMs: number };
  #topics: string[];
  #memberId = '';
  #generationId = -1;
  #owned = new Map<string, Owned>();
  /** Offsets handled but not yet committed, by topic/partition. */
  #pending = new Map<string, CommittedOffset>();
  #commitInFlight: Promise<void> | null = null;
  #heartbeat: ReturnType<typeof setInterval> | undefined;
  #stopped = false;
  #joining = false;
  #resolveReady!: () => void;
  #settle!: (error?: unknown) => void;
  #offs: (() => void)[] = [];

  constructor(client: RunnelClient, options: GroupConsumerOptions<T>) {
    super();
    if (!options.handler === !options.eachBatch) throw new RunnelError('INVALID_REQUEST', VERBOSE ? 'createGroupConsumer: pass exactly one of `handler` or `eachBatch`' : '');
    if (options.topics.length === 0) throw new RunnelError('INVALID_REQUEST', VERBOSE ? 'createGroupConsumer: `topics` is empty' : '');
    this.#timeouts = validateGroupTimeouts(options.sessionTimeoutMs, options.heartbeatIntervalMs);
    const { conn, deps } = client.internals();
    conn.speak(groupFrames);
    this.#conn = conn;
    this.#deps = { ...deps, reportError: (e) => this.emit('error', e) };
    this.#options = options;
    this.group = options.group;
    this.#topics = options.topics.map((t) => toTopic(t).name);
    this.ready = new Promise((r) => (this.#resolveReady = r));
    this.closed = new Promise<void>((resolve, reject) => (this.#settle = (e) => (e === undefined ? resolve() : reject(e))));
    this.closed.catch(() => {});
    this.#offs.push(
      conn.onFrame((f) => { if (f.type === 'groupAssignment' && f.group === this.group) void this.#handleAssignment(f); }),
      conn.on('connected', () => void this.#join()),
      conn.on('disconnected', () => this.#loseMembership()), // the broker removed us when the socket closed
      conn.on('statechange', ({ state }) => { if (state === 'closed') void this.#stop(new RunnelError('NOT_CONNECTED', VERBOSE ? 'client closed' : '')); }),
    );
    options.signal?.addEventListener('abort', () => void this.leave(), { once: true });
    if (options.signal?.aborted) queueMicrotask(() => void this.leave());
    else if (conn.state === 'connected') void this.#join();
  }

  get memberId(): string { return this.#memberId; }
  get generationId(): number { return this.#generationId; }
  /** Partitions owned in the current generation. */
  get assignment(): TopicPartition[] { return [...this.#owned.values()].map(({ topic, partition }) => ({ topic, partition })); }

  /** Commits every offset handled so far (with `autoCommit: false`, the only regular commit). */
  commit(): Promise<void> {
    return this.#flush();
  }

  /** Stops consuming, commits what was processed (still a member), leaves the group. */
  leave(): Promise<void> {
    return this.#stop(undefined);
  }

  async #join(): Promise<void> {
    if (this.#stopped || this.#joining || this.#conn.state !== 'connected') return;
    this.#joining = true;
    try {
      const { sessionTimeoutMs, heartbeatIntervalMs } = this.#timeouts;
      const answer = await this.#conn.request<GroupAssignmentFrame>({ type: 'groupJoin', group: this.group, memberId: '', topics: this.#topics, sessionTimeoutMs });
      this.#joining = false;
      if (answer.errorCode !== 0) throw new RunnelError(errorNameOf(answer.errorCode), VERBOSE ? `cannot join group ${this.group}` : '');
      this.#startHeartbeat(heartbeatIntervalMs);
      await this.#handleAssignment(answer, true);
    } catch (error) {
      this.#joining = false;
      const e = error instanceof RunnelError ? error : new RunnelError('UNKNOWN_SERVER_ERROR', VERBOSE ? 'group join failed' : '', { cause: error });
      if (e.errorName === 'NOT_CONNECTED') return; // rejoins on the next `connected`
      this.emit('error', e);
      if (e.retryable) setTimeout(() => void this.#join(), GROUP_JOIN_RETRY_MS);
      else void this.#stop(e);
    }
  }

  #startHeartbeat(intervalMs: number): void {
    clearInterval(this.#heartbeat);
    this.#heartbeat = setInterval(() => {
      if (this.#memberId !== '') this.#conn.send({ type: 'groupHeartbeat', group: this.group, memberId: this.#memberId, generationId: this.#generationId });
    }, intervalMs);
  }

  /** The join answer (`isJoinAnswer`) or a push; pushes for another (older) memberId of ours are stale. */
  async #handleAssignment(frame: GroupAssignmentFrame, isJoinAnswer = false): Promise<void> {
    if (this.#stopped || (!isJoinAnswer && (this.#memberId === '' || frame.memberId !== this.#memberId))) return;
    const step = planAssignment(isJoinAnswer ? -1 : this.#generationId, this.assignment, frame);
    if (step.kind === 'ignore') return;
    if (step.kind === 'rejoin') {
      this.#loseMembership();
      return void this.#join();
    }
    this.#memberId = step.memberId;
    this.#generationId = step.generationId;
    for (const tp of step.revoked) this.#revoke(tp);
    const added: Owned[] = step.added.map((tp) => ({ ...tp, sub: null }));
    for (const o of added) this.#owned.set(key(o.topic, o.partition), o);
    this.emit('rebalance', { generationId: step.generationId, memberId: step.memberId, assignment: this.assignment, added: step.added, revoked: step.revoked });
    void this.#flush(); // kept partitions' offsets, now with the new generation
    try {
      await this.#start(added, step.generationId);
    } catch (error) {
      if (error instanceof RunnelError && error.errorName === 'NOT_CONNECTED') return;
      void this.#stop(error);
    }
  }

  /** Fetches the committed offsets once and starts a subscription per added partition. */
  async #start(added: Owned[], generationId: number): Promise<void> {
    if (added.length > 0) {
      const committed = await this.#fetchOffsets(added);
      for (const o of added) {
        if (this.#stopped || this.#owned.get(key(o.topic, o.partition)) !== o) continue; // revoked meanwhile
        o.sub = this.#subscribe(o, committed.get(key(o.topic, o.partition)));
      }
      await Promise.all(added.map((o) => o.sub?.ready));
    }
    if (generationId === this.#generationId) this.#resolveReady();
  }

  /**
   * The committed offsets of `added` (one offsetFetch). A retryable refusal (the coordinator moving after a
   * broker loss, etcd away, a timeout) is retried with backoff (OFFSET_FETCH_RETRY_MS doubled, at most
   * GROUP_JOIN_RETRY_MS) while any of `added` is still owned: giving up would stop the member for good.
   * NOT_CONNECTED and fatal codes throw (`#handleAssignment` rejoins on the next `connected`, or stops).
   */
  async #fetchOffsets(added: Owned[]): Promise<Map<string, CommittedOffset>> {
    const topics = [...new Set(added.map((o) => o.topic))];
    for (let attempt = 0; ; attempt++) {
      let error: RunnelError;
      try {
        const fetched = await this.#conn.request<OffsetFetchResultFrame>({ type: 'offsetFetch', group: this.group, topics });
        if (fetched.errorCode === 0) return new Map(fetched.offsets.map((o) => [key(o.topic, o.partition), o]));
        error = new RunnelError(errorNameOf(fetched.errorCode), VERBOSE ? `offsetFetch for group ${this.group}` : '');
      } catch (e) {
        error = e instanceof RunnelError ? e : new RunnelError('UNKNOWN_SERVER_ERROR', VERBOSE ? 'offsetFetch failed' : '', { cause: e });
      }
      if (error.errorName === 'NOT_CONNECTED' || !error.retryable) throw error;
      this.emit('error', error);
      await new Promise((r) => setTimeout(r, Math.min(GROUP_JOIN_RETRY_MS, OFFSET_FETCH_RETRY_MS * 2 ** attempt)));
      // Revoked (a rebalance, a lost connection) or stopped meanwhile: nothing of `added` is started.
      if (this.#stopped || added.every((o) => this.#owned.get(key(o.topic, o.partition)) !== o)) return new Map();
    }
  }

  #subscribe(owned: Owned, committed: CommittedOffset | undefined): Subscription<T> {
    const topicRef = this.#options.topics.find((t) => toTopic(t).name === owned.topic)!;
    const sub = new Subscription<T>({ ...this.#deps, offsets: this.#offsetStore(owned, committed) }, topicRef, this.#options.handler ?? (() => {}), {
      consumerId: this.group, from: 'stored', reset: this.#options.reset ?? 'latest', partitions: [owned.partition],
    }, this.#options.eachBatch);
    void sub.closed.catch((error) => void this.#stop(error));
    return sub;
  }

  /** The group as the subscription's offset store, valid while `owned` is. */
  #offsetStore(owned: Owned, committed: CommittedOffset | undefined): OffsetStore {
    const stored = new Map<number, StoredOffset>();
    if (committed) stored.set(owned.partition, { offset: committed.offset, topicId: committed.metadata });
    return {
      getOffsets: async () => stored,
      putOffsets: async (_consumerId, topic, offsets) => {
        for (const [partition, { offset, topicId }] of offsets) {
          if (this.#owned.get(key(topic, partition)) !== owned) continue; // revoked: the broker would fence it
          this.#pending.set(key(topic, partition), { topic, partition, offset, metadata: topicId });
        }
        if (this.#options.autoCommit !== false) await this.#flush();
      },
      deleteOffsets: async () => {},
    };
  }

  /** Commits pending offsets of owned partitions: one offsetCommit in flight, the next carries everything newer. */
  #flush(): Promise<void> {
    if (this.#commitInFlight) return this.#commitInFlight.then(() => this.#flush());
    const offsets = [...this.#pending.entries()].filter(([k]) => this.#owned.has(k)).map(([, o]) => o);
    if (offsets.length === 0 || this.#memberId === '') return Promise.resolve();
    const generationId = this.#generationId;
    this.#commitInFlight = this.#conn.request<OffsetCommitAckFrame>({ type: 'offsetCommit', group: this.group, generationId, memberId: this.#memberId, offsets })
      .then((ack) => {
        if (ack.errorCode !== 0) throw new RunnelError(errorNameOf(ack.errorCode), VERBOSE ? `offsetCommit (generation ${generationId})` : '');
        for (const o of offsets) if (this.#pending.get(key(o.topic, o.partition)) === o) this.#pending.delete(key(o.topic, o.partition));
        this.emit('commit', { generationId, offsets });
      })
      .catch((error: unknown) => {
        // The coordinator does not know this member (a new one after a failover, a session expired): rejoin now,
        // not at the next heartbeat's answer (Kafka rejoins on a commit refused UNKNOWN_MEMBER_ID too).
        if (error instanceof RunnelError && error.errorName === 'UNKNOWN_MEMBER_ID' && generationId === this.#generationId && !this.#stopped) {
          this.#loseMembership();
          return void this.#join();
        }
        // Fenced or disconnected: the offsets stay pending; the next assignment decides whether they may be committed.
        if (error instanceof RunnelError && FENCED.includes(error.errorName)) return;
        this.emit('error', error instanceof RunnelError ? error : new RunnelError('UNKNOWN_SERVER_ERROR', VERBOSE ? 'offsetCommit failed' : '', { cause: error }));
      })
      .finally(() => { this.#commitInFlight = null; });
    return this.#commitInFlight;
  }

  /** Stops a partition this member no longer owns; its uncommitted offsets are dropped (the new owner re-reads them). */
  #revoke(tp: TopicPartition): void {
    const k = key(tp.topic, tp.partition);
    const owned = this.#owned.get(k);
    this.#owned.delete(k);
    this.#pending.delete(k);
    owned?.sub?.unsubscribe().catch((e: unknown) => this.emit('error', e instanceof RunnelError ? e : new RunnelError('UNKNOWN_SERVER_ERROR', VERBOSE ? 'unsubscribe failed' : '', { cause: e })));
  }

  /** The broker dropped this member (disconnect, session timeout): everything is revoked. */
  #loseMembership(): void {
    clearInterval(this.#heartbeat);
    const lost = this.assignment;
    for (const tp of lost) this.#revoke(tp);
    this.#pending.clear();
    this.#memberId = '';
    this.#generationId = -1;
    if (lost.length > 0) this.emit('rebalance', { generationId: -1, memberId: '', assignment: [], added: [], revoked: lost });
  }

  async #stop(error: unknown): Promise<void> {
    if (this.#stopped) return this.closed.catch(() => {});
    this.#stopped = true;
    clearInterval(this.#heartbeat);
    // Still a member: the handled offsets are committed with the current generation before leaving.
    // NB: allSettled and #flush never reject, so `closed` always settles (nothing escapes as an unhandled rejection).
    await Promise.allSettled([...this.#owned.values()].map((o) => o.sub?.unsubscribe()));
    await this.#flush();
    if (this.#memberId !== '') this.#conn.send({ type: 'groupLeave', group: this.group, memberId: this.#memberId });
    for (const off of this.#offs) off();
    this.#owned.clear();
    this.#memberId = '';
    this.#resolveReady();
    this.#settle(error);
  }
}

/**
 * Joins `options.group` and consumes the partitions the broker assigns.
 * @example
 * import { createGroupConsumer } from '@runnel/client/group';
 * const billing = createGroupConsumer(client, { group: 'billing', topics: [orders], reset: 'earliest',
 *   handler: async (rec) => charge(rec.value), signal: shutdown.signal });
 * billing.on('rebalance', ({ assignment }) => console.log('now own', assignment));
 * await billing.ready;
 */
export function createGroupConsumer<T>(client: RunnelClient, options: GroupConsumerOptions<T>): GroupConsumer<T> {
  return new GroupConsumer(client, options);
}
