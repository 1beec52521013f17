/**
 * The cluster's metadata in etcd (docs/cluster.md "What lives where"): the
 * cluster `MetadataStore` (topics), the `IsrStore` (partition leadership and
 * ISR), producer id blocks and key, and a watched cache of all of it.
 *
 * Invariants:
 * - every write is one etcd transaction guarded by a compare: a topic and
 *   all its partition keys are created together only if the name is free,
 *   and deleted together only if the stored topic id matches; leadership
 *   and ISR change only if the key is still at the caller's mod revision;
 * - listeners see changes in etcd revision order; after a watch stream
 *   breaks the store reloads everything and reports the differences
 *   (`ClusterCache.replace`), so no change is missed or seen twice, even
 *   across an etcd restart or compaction;
 * - an unreachable etcd fails operations with CLUSTER_UNAVAILABLE within
 *   `etcdRequestTimeoutMs` (EtcdConnection), never hangs them.
 */
import { randomBytes, randomInt } from 'node:crypto';
import type { IKeyValue } from 'etcd3';
import { RunnelError, assert } from '@runnel/client/codec';
import type { MetadataStore } from '../metadata/metadata-store.ts';
import type { TopicInfo } from '../metadata/topic-info.ts';
import type { AlterIsrResult, BrokerEndpoint, IsrStore, PartitionLeadership, VersionedLeadership } from './cluster-state.ts';
import type { ElectionCandidate } from './cluster-cache.ts';
import { ClusterKeys, decodeBroker, decodeLeadership, decodeTopic, encodeLeadership } from './cluster-keys.ts';
import { ClusterWatch, defaultClusterWatchLimits, type ClusterListener, type ClusterWatchLimits } from './cluster-watch.ts';
import { EtcdConnection, type EtcdConnectionOptions } from './etcd-connection.ts';
import { assignReplicas } from './replica-assignment.ts';

export interface ClusterStoreLimits extends ClusterWatchLimits {
  /** etcd's `--max-txn-ops` (default 128): a topic is created in one transaction, so it can have at most this − 1 partitions. */
  etcdMaxTxnOps: number;
  /** Compare-and-swap rounds of one read-modify-write (topic delete, producer id block) before giving up with CLUSTER_UNAVAILABLE. */
  maxCasAttempts: number;
  /** Largest producer id block one call may reserve. */
  maxProducerIdBlockSize: number;
}

export const defaultClusterStoreLimits: ClusterStoreLimits = {
  etcdMaxTxnOps: 128,
  maxCasAttempts: 32,
  ...defaultClusterWatchLimits,
  maxProducerIdBlockSize: 1_000_000,
};

export function validateClusterStoreLimits(limits: ClusterStoreLimits): void {
  for (const [name, value] of Object.entries(limits)) {
    if (!Number.isInteger(value) || value <= 0) throw new RangeError(`cluster store limit ${name} must be a positive integer, got ${value}`);
  }
  if (limits.etcdMaxTxnOps < 2) throw new RangeError('etcdMaxTxnOps must be at least 2 (a topic and one partition)');
  if (limits.watchResyncMinDelayMs > limits.watchResyncMaxDelayMs) throw new RangeError('watchResyncMinDelayMs must not exceed watchResyncMaxDelayMs');
}

export type { ClusterListener };

export interface ClusterStoreOptions extends Partial<EtcdConnectionOptions> {
  /** An open connection to share (membership, controller); else one is made from `endpoints` and closed by `close()`. */
  connection?: EtcdConnection;
  limits?: Partial<EtcdConnectionOptions['limits'] & ClusterStoreLimits>;
  /** A key whose value does not decode (default: console.warn). */
  onInvalidValue?: (key: string, problem: string) => void;
}

/** Extra compare a write must pass: the controller's election key still exists at its create revision (a deposed controller cannot write). */
export interface WriteGuard {
  key: string;
  createRevision: string;
}

export class ClusterStore implements MetadataStore, IsrStore {
  readonly connection: EtcdConnection;
  private readonly limits: ClusterStoreLimits;
  private readonly ownsConnection: boolean;
  private readonly watcher: ClusterWatch;
  private readonly onInvalidValue: (key: string, problem: string) => void;
  private isClosed = false;

  private constructor(options: ClusterStoreOptions) {
    this.limits = { ...defaultClusterStoreLimits, ...pick(options.limits, defaultClusterStoreLimits) };
    validateClusterStoreLimits(this.limits);
    this.ownsConnection = options.connection === undefined;
    if (options.connection) {
      this.connection = options.connection;
    } else {
      assert(options.endpoints !== undefined, 'ClusterStore.open needs a connection or endpoints');
      this.connection = new EtcdConnection({ endpoints: options.endpoints, prefix: options.prefix, limits: options.limits });
    }
    this.onInvalidValue = options.onInvalidValue ?? ((key, problem) => console.warn(`runnel cluster: ignoring etcd key ${this.connection.key(key)}: ${problem}`));
    this.watcher = new ClusterWatch(this.connection, this.limits, this.onInvalidValue);
  }

  /**
   * Connects, loads everything under the prefix and starts watching.
   * CLUSTER_UNAVAILABLE when etcd cannot be reached.
   * @example
   * const store = await ClusterStore.open({ endpoints: ['http://127.0.0.1:2379'] });
   * store.watch({ leadershipChanged: (l) => console.log(l.topicId, l.partition, l.leader) });
   */
  static async open(options: ClusterStoreOptions): Promise<ClusterStore> {
    const store = new ClusterStore(options);
    try {
      await store.watcher.start();
    } catch (e) {
      await store.close();
      throw e;
    }
    return store;
  }

  // --- MetadataStore ---------------------------------------------------

  /** All topics as stored now (a linearizable read), sorted by name. */
  async load(): Promise<TopicInfo[]> {
    const kvs = await this.range('load topics', ClusterKeys.topics);
    const topics: TopicInfo[] = [];
    for (const kv of kvs) {
      const decoded = decodeTopic(kv.value.toString());
      if (decoded.ok) topics.push(decoded.value);
      else this.onInvalidValue(this.relative(kv), decoded.problem);
    }
    return topics.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  /**
   * Creates the topic with replicas spread over the live brokers (cached):
   * Kafka's assignment with a random start. INVALID_REPLICATION_FACTOR when
   * `info.replicationFactor` exceeds the live brokers.
   */
  async createTopic(info: TopicInfo): Promise<void> {
    const brokerIds = this.liveBrokerIds();
    const n = Math.max(1, brokerIds.length);
    const assignment = assignReplicas({
      partitions: info.partitions, replicationFactor: info.replicationFactor, brokerIds, startIndex: randomInt(n), replicaShift: randomInt(n),
    });
    return this.createTopicWithAssignment(info, assignment);
  }

  /**
   * Creates the topic key and every partition key (leader = first replica,
   * epoch 0, ISR = all replicas: the logs are empty) in one transaction,
   * only if the name is free. TOPIC_ALREADY_EXISTS otherwise.
   */
  async createTopicWithAssignment(info: TopicInfo, assignment: number[][]): Promise<void> {
    assert(assignment.length === info.partitions, `assignment has ${assignment.length} partitions, the topic ${info.partitions}`);
    if (info.partitions + 1 > this.limits.etcdMaxTxnOps) {
      throw new RunnelError('INVALID_PARTITIONS', `a topic can have at most ${this.limits.etcdMaxTxnOps - 1} partitions in this cluster (etcd --max-txn-ops ${this.limits.etcdMaxTxnOps}; raise both to allow more)`);
    }
    const client = this.connection.client;
    const topicKey = this.connection.key(ClusterKeys.topic(info.name));
    const puts = assignment.map((replicas, p) => {
      assert(replicas.length > 0 && new Set(replicas).size === replicas.length, `partition ${p}: replicas must be distinct and non-empty`);
      const leadership: PartitionLeadership = { leader: replicas[0], leaderEpoch: 0, isr: [...replicas], replicas: [...replicas] };
      return client.put(this.connection.key(ClusterKeys.partition(info.topicId, p))).value(encodeLeadership(leadership));
    });
    const result = await this.connection.run(`create topic ${info.name}`, () =>
      client.if(topicKey, 'Create', '==', 0).then(client.put(topicKey).value(JSON.stringify(info)), ...puts).commit());
    if (!result.succeeded) throw new RunnelError('TOPIC_ALREADY_EXISTS', `topic ${info.name} already exists`);
  }

  /** Deletes the topic and its partition keys in one transaction, only if the stored topic has this id. */
  async deleteTopic(name: string, topicId: string): Promise<void> {
    const client = this.connection.client;
    const topicKey = this.connection.key(ClusterKeys.topic(name));
    for (let attempt = 0; attempt < this.limits.maxCasAttempts; attempt++) {
      const current = await this.connection.run(`read topic ${name}`, () => client.get(topicKey).exec());
      const kv = current.kvs[0];
      const stored = kv ? decodeTopic(kv.value.toString()) : undefined;
      if (!kv || !stored?.ok || stored.value.topicId !== topicId) {
        throw new RunnelError('UNKNOWN_TOPIC_OR_PARTITION', `topic ${name} (id ${topicId}) does not exist`);
      }
      const result = await this.connection.run(`delete topic ${name}`, () =>
        client.if(topicKey, 'Mod', '==', kv.mod_revision)
          .then(client.delete().key(topicKey), client.delete().prefix(this.connection.key(ClusterKeys.partitionsOf(topicId))))
          .commit());
      if (result.succeeded) return;
    }
    throw new RunnelError('CLUSTER_UNAVAILABLE', `delete topic ${name}: the key kept changing (${this.limits.maxCasAttempts} attempts)`);
  }

  /** Stops watching; closes the connection if the store made it. Idempotent. */
  async close(): Promise<void> {
    if (this.isClosed) return;
    this.isClosed = true;
    this.watcher.close();
    if (this.ownsConnection) this.connection.close();
  }

  // --- Leadership and ISR ----------------------------------------------

  /** Every partition's leadership as stored now (linearizable read). */
  async readLeaderships(): Promise<VersionedLeadership[]> {
    const kvs = await this.range('read leaderships', ClusterKeys.partitions);
    return kvs.flatMap((kv) => this.toLeadership(kv) ?? []);
  }

  /** One partition's leadership as stored now; undefined when it does not exist. */
  async readLeadership(topicId: string, partition: number): Promise<VersionedLeadership | undefined> {
    const key = this.connection.key(ClusterKeys.partition(topicId, partition));
    const result = await this.connection.run(`read leadership ${topicId}/${partition}`, () => this.connection.client.get(key).exec());
    return result.kvs[0] ? this.toLeadership(result.kvs[0]) : undefined;
  }

  /**
   * Replaces a partition's leadership only if its key is still at
   * `expected.revision` (and `guard` holds). 'fenced': it changed (re-read
   * and decide again); 'unavailable': etcd unreachable, nothing written.
   */
  async casLeadership(expected: VersionedLeadership, next: PartitionLeadership, guard?: WriteGuard): Promise<AlterIsrResult> {
    assert(next.leader === -1 || next.isr.includes(next.leader), `leader ${next.leader} must be in the ISR [${next.isr}]`);
    assert(next.isr.every((id) => next.replicas.includes(id)), `ISR [${next.isr}] must be a subset of the replicas [${next.replicas}]`);
    const client = this.connection.client;
    const key = this.connection.key(ClusterKeys.partition(expected.topicId, expected.partition));
    let txn = client.if(key, 'Mod', '==', expected.revision);
    if (guard) txn = txn.and(guard.key, 'Create', '==', guard.createRevision);
    try {
      const result = await this.connection.run(`write leadership ${expected.topicId}/${expected.partition}`, () =>
        txn.then(client.put(key).value(encodeLeadership(next))).commit());
      if (!result.succeeded) return { ok: false, reason: 'fenced' };
      const leadership: VersionedLeadership = {
        leader: next.leader, leaderEpoch: next.leaderEpoch, isr: [...next.isr], replicas: [...next.replicas],
        topicId: expected.topicId, partition: expected.partition, revision: result.header.revision,
      };
      return { ok: true, leadership };
    } catch (e) {
      if (e instanceof RunnelError && e.errorName === 'CLUSTER_UNAVAILABLE') return { ok: false, reason: 'unavailable' };
      throw e;
    }
  }

  /**
   * The leader's ISR change (cluster-state.ts `IsrStore`): same leader and
   * epoch, new ISR, only if nothing changed since `expected`.
   */
  async alterIsr(expected: VersionedLeadership, isr: number[]): Promise<AlterIsrResult> {
    assert(expected.leader >= 0, 'an offline partition has no leader to change its ISR');
    return this.casLeadership(expected, { leader: expected.leader, leaderEpoch: expected.leaderEpoch, isr, replicas: expected.replicas });
  }

  // --- Brokers ---------------------------------------------------------

  /** Live brokers as registered now (linearizable read), sorted by id. */
  async readBrokers(): Promise<BrokerEndpoint[]> {
    const kvs = await this.range('read brokers', ClusterKeys.brokers);
    const brokers: BrokerEndpoint[] = [];
    for (const kv of kvs) {
      const decoded = decodeBroker(kv.value.toString());
      if (decoded.ok) brokers.push(decoded.value);
      else this.onInvalidValue(this.relative(kv), decoded.problem);
    }
    return brokers.sort((a, b) => a.id - b.id);
  }

  // --- Producer ids ----------------------------------------------------

  /** Reserves `size` producer ids cluster-wide (compare-and-swap on `producer-ids/next-block`) and returns the first. */
  async allocateProducerIdBlock(size: number): Promise<number> {
    assert(Number.isSafeInteger(size) && size > 0 && size <= this.limits.maxProducerIdBlockSize, `producer id block size must be 1..${this.limits.maxProducerIdBlockSize}, got ${size}`);
    const client = this.connection.client;
    const key = this.connection.key(ClusterKeys.producerIdNextBlock);
    for (let attempt = 0; attempt < this.limits.maxCasAttempts; attempt++) {
      const current = await this.connection.run('read producer id block', () => client.get(key).exec());
      const kv = current.kvs[0];
      const start = kv ? Number(kv.value.toString()) : 0;
      if (!Number.isSafeInteger(start) || start < 0 || !Number.isSafeInteger(start + size)) {
        throw new RunnelError('UNKNOWN_SERVER_ERROR', `etcd key ${key} holds ${kv?.value.toString()}, not a producer id`);
      }
      const txn = kv ? client.if(key, 'Mod', '==', kv.mod_revision) : client.if(key, 'Create', '==', 0);
      const result = await this.connection.run('reserve producer id block', () => txn.then(client.put(key).value(String(start + size))).commit());
      if (result.succeeded) return start;
    }
    throw new RunnelError('CLUSTER_UNAVAILABLE', `reserve producer id block: the counter kept changing (${this.limits.maxCasAttempts} attempts)`);
  }

  /** The cluster's 32-byte producer secret key: created by the first broker that asks, the same for all. */
  async producerIdKey(): Promise<Buffer> {
    const client = this.connection.client;
    const key = this.connection.key(ClusterKeys.producerIdKey);
    const candidate = randomBytes(32).toString('base64url');
    const result = await this.connection.run('producer id key', () =>
      client.if(key, 'Create', '==', 0).then(client.put(key).value(candidate)).else(client.get(key)).commit());
    const text = result.succeeded ? candidate : result.responses[0]?.response_range?.kvs[0]?.value.toString();
    const bytes = text === undefined ? undefined : Buffer.from(text, 'base64url');
    if (!bytes || bytes.length !== 32) throw new RunnelError('UNKNOWN_SERVER_ERROR', `etcd key ${key} does not hold a 32-byte base64url key`);
    return bytes;
  }

  // --- Watch and cache -------------------------------------------------

  /** Subscribes to changes (after the current cache state); returns the unsubscribe. */
  watch(listener: ClusterListener): () => void {
    return this.watcher.subscribe(listener);
  }

  get connected(): boolean {
    return this.connection.connected;
  }

  /** etcd revision the cache reflects. */
  get revision(): string {
    return this.watcher.cache.revision;
  }

  // Cached getters: the state as of `revision` (what the watch delivered). Reads that must see the latest write: read*().

  /** Topics, sorted by name. */
  topics(): TopicInfo[] {
    return this.watcher.cache.topics();
  }

  topic(name: string): TopicInfo | undefined {
    return this.watcher.cache.topic(name);
  }

  leadership(topicId: string, partition: number): VersionedLeadership | undefined {
    return this.watcher.cache.leadership(topicId, partition);
  }

  leaderships(): VersionedLeadership[] {
    return this.watcher.cache.leaderships();
  }

  /** Live (registered) brokers, sorted by id. */
  brokers(): BrokerEndpoint[] {
    return this.watcher.cache.brokers();
  }

  broker(id: number): BrokerEndpoint | undefined {
    return this.watcher.cache.broker(id);
  }

  liveBrokerIds(): number[] {
    return this.watcher.cache.brokers().map((b) => b.id);
  }

  /** The elected controller's broker id as last seen; null when none. */
  controller(): number | null {
    return this.watcher.cache.controller();
  }

  /** Controller campaigns as last seen, elected first; `key` is the full etcd key. */
  electionCandidates(): ElectionCandidate[] {
    return this.watcher.cache.candidates().map((c) => ({ ...c, key: this.connection.key(c.key) }));
  }

  private async range(what: string, relativePrefix: string): Promise<IKeyValue[]> {
    const prefix = this.connection.key(relativePrefix);
    const response = await this.connection.run(what, () => this.connection.client.getAll().prefix(prefix).exec());
    return response.kvs;
  }

  private relative(kv: IKeyValue): string {
    return kv.key.toString().slice(this.connection.key('').length);
  }

  private toLeadership(kv: IKeyValue): VersionedLeadership | undefined {
    const relative = this.relative(kv);
    const [, topicId, partition] = relative.split('/');
    const decoded = decodeLeadership(kv.value.toString());
    if (!decoded.ok) {
      this.onInvalidValue(relative, decoded.problem);
      return undefined;
    }
    return { ...decoded.value, topicId, partition: Number(partition), revision: kv.mod_revision };
  }
}

/** The keys of `defaults` that `values` sets (limits objects are shared between modules). */
function pick<T extends object>(values: Partial<T> | undefined, defaults: T): Partial<T> {
  const out: Partial<T> = {};
  if (!values) return out;
  for (const k of Object.keys(defaults) as (keyof T)[]) if (values[k] !== undefined) out[k] = values[k];
  return out;
}
