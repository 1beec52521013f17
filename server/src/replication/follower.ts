/**
 * The follower role of one replica for one leader epoch: a fetch loop to the
 * leader from its durable log end (docs/cluster.md "Replication protocol").
 *
 * Each round: fetch {fetchOffset = durable end, lastFetchedEpoch = the log's
 * latest epoch, knownHighWatermark}; a `divergingEpoch` answer → truncate
 * (divergence.ts) and fetch again; batches → every one checked (header, CRC,
 * contiguous from the log end; one bad batch drops the whole answer, which is
 * fetched again) and appended AS THEY ARE (`appendAsFollower`: same offsets,
 * same partitionLeaderEpoch, producer state rebuilt); then the leader's high
 * watermark is applied (the log caps it at its own durable end). A log that
 * ends below the leader's log start restarts empty there.
 *
 * Ordering contract: the next fetch is sent only after fdatasync covers every
 * batch of the previous answer, so a fetchOffset the leader counts is always
 * durable here; truncation happens before the fetch that follows it; after
 * `stop()` resolves nothing more is appended or truncated by this role.
 */
import { AssertionError, iterateBatches, RunnelError, type BatchHeader } from '@runnel/client/codec';
import type { PartitionLog } from '../log/partition-log.ts';
import { nativeCrc } from '../log/partition-log.ts';
import { truncationOffset } from './divergence.ts';
import type { ReplicationLimits } from './limits.ts';
import type { PeerLinks } from './peer-links.ts';
import type { FetchResponse } from './protocol.ts';
import { isTracing, traceNowMs, traceStage } from './trace.ts';

export interface FollowerRoleOptions {
  brokerId: number;
  leaderId: number;
  leaderEpoch: number;
  topicId: string;
  partition: number;
  log: PartitionLog;
  links: PeerLinks;
  limits: ReplicationLimits;
  warn(message: string): void;
  /** This log holds everything below the leader's high watermark (after a fetch round): it may be elected again. */
  onCaughtUp?(): void;
}

/** Batches appended together before awaiting their fdatasync (stays well under the log's maxPendingAppends). */
const MAX_BATCHES_PER_APPEND_ROUND = 4096;

/** Why a fetch answer was not appended (it is fetched again). */
class BadAnswer extends Error {}

export class FollowerRole {
  readonly leaderId: number;
  readonly leaderEpoch: number;
  readonly #o: FollowerRoleOptions;
  readonly #abort = new AbortController();
  #loop: Promise<void> = Promise.resolve();
  #knownHighWatermark: number;
  /** A high-watermark poll is in flight (at most one: see #pollHighWatermark). */
  #isPolling = false;
  /** The last fetch error, for views and logs (null after a good answer). */
  lastError: RunnelError | null = null;

  constructor(o: FollowerRoleOptions) {
    this.#o = o;
    this.leaderId = o.leaderId;
    this.leaderEpoch = o.leaderEpoch;
    this.#knownHighWatermark = o.log.highWatermark;
  }

  start(): void {
    this.#loop = this.#run();
  }

  /** Stops fetching; resolves once the loop ended (no append or truncation of this role runs after). */
  async stop(): Promise<void> {
    this.#abort.abort();
    await this.#loop;
  }

  get #isStopped(): boolean {
    return this.#abort.signal.aborted;
  }

  async #run(): Promise<void> {
    while (!this.#isStopped) {
      try {
        const sentMs = isTracing ? traceNowMs() : 0;
        const answer = await this.#fetch();
        if (this.#isStopped) return;
        if (isTracing) traceStage('follower.fetchRoundTrip', traceNowMs() - sentMs);
        await this.#handleAnswer(answer);
        this.lastError = null;
      } catch (err) {
        if (this.#isStopped) return;
        this.#onError(err);
        await this.#sleep(this.#o.limits.replicaFetchBackoffMs);
      }
    }
  }

  /** A fetch from the durable log end; `maxBytes` 0 is a high-watermark poll (#pollHighWatermark). */
  #fetch(maxBytes = this.#o.limits.replicaFetchMaxBytes): Promise<FetchResponse> {
    const { log, limits } = this.#o;
    // Invariant (fetch loop): the log end is durable here (the previous round awaited its fdatasync).
    return this.#o.links.fetch(this.leaderId, {
      topicId: this.#o.topicId, partition: this.#o.partition, replicaId: this.#o.brokerId,
      currentLeaderEpoch: this.leaderEpoch, lastFetchedEpoch: log.leaderEpoch, fetchOffset: log.durableEndOffset,
      knownHighWatermark: this.#knownHighWatermark, maxBytes, maxWaitMs: limits.replicaFetchMaxWaitMs,
    }, limits.replicaFetchTimeoutMs, this.#abort.signal);
  }

  async #handleAnswer(answer: FetchResponse): Promise<void> {
    const log = this.#o.log;
    if (answer.divergingEpoch) {
      const target = truncationOffset(log, answer.divergingEpoch, log.highWatermark);
      if (target >= log.logEndOffset) throw new BadAnswer(`the leader answered divergingEpoch ${JSON.stringify(answer.divergingEpoch)}, but the log (end ${log.logEndOffset}, epoch ${log.leaderEpoch}) has nothing to truncate there`);
      this.#o.warn(`diverged from leader ${this.leaderId} (epoch ${this.leaderEpoch}) at ${JSON.stringify(answer.divergingEpoch)}: truncating ${log.logEndOffset - target} offsets to ${target}`);
      // Invariant (KIP-101): committed records are on every ISR member, so a truncation never reaches below the high watermark.
      if (target < log.highWatermark) this.#o.warn(`INVARIANT: truncating to ${target}, below the high watermark ${log.highWatermark}: consumers saw records that are now gone`);
      await log.truncateTo(target);
      return;
    }
    if (answer.records.length === 0 && answer.logStartOffset > log.logEndOffset) {
      // The leader no longer has what this log needs (retention): restart empty at its log start (Kafka's truncateFullyAndStartAt).
      this.#o.warn(`the log ends at ${log.logEndOffset}, below leader ${this.leaderId}'s log start ${answer.logStartOffset}: restarting the log empty there`);
      await log.truncateFullyAndStartAt(answer.logStartOffset);
      return;
    }
    const batches = this.#checkBatches(answer.records);
    // The high watermark first: what this log already holds durably becomes visible to its consumers now, not
    // after this answer's batches are written and fdatasync'ed (the log caps it at its durable end, and lifts the
    // cap as that fdatasync completes). Applied after the batches, a consumer of a follower waited one more
    // follower fdatasync per answer at the live tail.
    this.#knownHighWatermark = answer.highWatermark;
    log.setHighWatermark(answer.highWatermark);
    if (batches.length > 0) this.#pollHighWatermark();
    const receivedMs = isTracing && batches.length > 0 ? traceNowMs() : 0;
    for (let i = 0; i < batches.length && !this.#isStopped; i += MAX_BATCHES_PER_APPEND_ROUND) {
      const round = batches.slice(i, i + MAX_BATCHES_PER_APPEND_ROUND).map((b) => log.appendAsFollower(b.bytes, b.header));
      await Promise.all(round);
    }
    if (!log.isDurable) await log.flush();
    if (receivedMs > 0) traceStage('follower.appendDurable', traceNowMs() - receivedMs);
    if (log.durableEndOffset >= answer.highWatermark) this.#o.onCaughtUp?.();
  }

  /**
   * While this round writes and fdatasyncs its batches (the next fetch waits for that), a high-watermark poll
   * (maxBytes 0) to the leader: when the other ISR members' fetches move the high watermark meanwhile, it
   * arrives now, not with the answer to the next fetch (a whole follower write + fdatasync + round trip later).
   * Applied like any high watermark (the log caps it at its durable end); an error is left to the fetch loop.
   * At most one in flight; after `stop()` its answer is ignored.
   */
  #pollHighWatermark(): void {
    if (this.#isPolling) return;
    this.#isPolling = true;
    this.#fetch(0).then((answer) => {
      this.#isPolling = false;
      if (this.#isStopped || answer.leaderEpoch !== this.leaderEpoch || answer.highWatermark <= this.#knownHighWatermark) return;
      this.#knownHighWatermark = answer.highWatermark;
      this.#o.log.setHighWatermark(answer.highWatermark);
      // The leader holds this round's next fetch for data when this poll told the high watermark (leader.ts
      // #releaseHeld), so the caught-up signal is given here too.
      if (this.#o.log.durableEndOffset >= answer.highWatermark) this.#o.onCaughtUp?.();
    }, () => {
      this.#isPolling = false;
    });
  }

  /** Every batch whole, passing its CRC, contiguous from the log end; else BadAnswer (nothing is appended). */
  #checkBatches(records: Uint8Array): { bytes: Uint8Array; header: BatchHeader }[] {
    const out: { bytes: Uint8Array; header: BatchHeader }[] = [];
    let expected = this.#o.log.logEndOffset;
    for (const b of iterateBatches(records, { crc: nativeCrc })) {
      if (!b.ok) throw new BadAnswer(`a batch from leader ${this.leaderId} failed its check (${b.code}: ${b.message}); the answer is dropped and fetched again`);
      const { at, header } = b.value;
      if (header.baseOffset !== expected) throw new BadAnswer(`leader ${this.leaderId} sent a batch at offset ${header.baseOffset}, expected ${expected}`);
      out.push({ bytes: records.subarray(at, at + header.totalBytes), header });
      expected = header.baseOffset + header.lastOffsetDelta + 1;
    }
    return out;
  }

  #onError(err: unknown): void {
    const e = err instanceof RunnelError ? err : new RunnelError('UNKNOWN_SERVER_ERROR', (err as Error)?.message ?? String(err), { cause: err });
    const isNew = this.lastError?.errorName !== e.errorName;
    this.lastError = e;
    // Expected while leadership moves or a peer restarts: logged once per kind, not per retry.
    if (err instanceof BadAnswer || err instanceof AssertionError || (isNew && !isTransient(e))) this.#o.warn(`fetch from leader ${this.leaderId} (epoch ${this.leaderEpoch}) failed: ${e.message}`);
  }

  #sleep(ms: number): Promise<void> {
    if (this.#isStopped) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.#abort.signal.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.#abort.signal.addEventListener('abort', done, { once: true });
    });
  }
}

/** Errors of a cluster in motion: the follower just fetches again after its backoff. */
function isTransient(e: RunnelError): boolean {
  switch (e.errorName) {
    case 'NOT_CONNECTED':
    case 'REQUEST_TIMED_OUT':
    case 'NOT_LEADER_OR_FOLLOWER':
    case 'UNKNOWN_LEADER_EPOCH':
    case 'FENCED_LEADER_EPOCH':
    case 'UNKNOWN_TOPIC_OR_PARTITION':
    case 'ABORTED':
      return true;
    default:
      return false;
  }
}
