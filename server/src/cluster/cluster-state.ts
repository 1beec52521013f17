/**
 * The cluster's shared vocabulary (docs/cluster.md): what etcd stores about
 * brokers and partitions, and the one write a partition leader makes to it
 * (`IsrStore.alterIsr`). Types, and how two revisions compare
 * (`isNewerRevision`): the etcd store, the controller, the replicas and the
 * broker wiring all speak these.
 *
 * Safety rule every user of these types keeps: leadership and ISR change
 * only by compare-and-swap on `revision` (an etcd mod revision), and a
 * leader acts for one `leaderEpoch` only; a higher epoch fences it.
 */

/** A live broker, as registered under its etcd lease at `<prefix>/brokers/<id>`. */
export interface BrokerEndpoint {
  id: number;
  /** Base URL clients use (http://host:port); the WebSocket is `<url>/v1/ws` with ws/wss. */
  clientUrl: string;
  /** Where other brokers reach its replication port (docs/cluster.md "Internal protocol"). */
  replicationHost: string;
  replicationPort: number;
  startedAtMs: number;
  /** etcd lease id (decimal string) holding the registration: the controller revokes it when it sees the broker die. */
  leaseId: string;
}

/** One partition's leadership as stored at `<prefix>/partitions/<topicId>/<partition>`. */
export interface PartitionLeadership {
  /** Broker id of the leader; -1 = offline (no live in-sync replica; never an unclean election). */
  leader: number;
  /** Bumped by every leader change; a replica acting for a lower epoch is fenced. */
  leaderEpoch: number;
  /** In-sync replicas (includes the leader when it is online); only the current leader shrinks or expands it. */
  isr: number[];
  /** Assigned replicas, preferred leader first. */
  replicas: number[];
}

/** Leadership as read from etcd, with the revision a compare-and-swap must name. */
export interface VersionedLeadership extends PartitionLeadership {
  topicId: string;
  partition: number;
  /** etcd mod revision of the key (decimal string). */
  revision: string;
}

/** Whether revision `a` is later than `b` (etcd mod revisions are decimal strings of int64: compared as BigInt). */
export function isNewerRevision(a: string, b: string): boolean {
  return BigInt(a) > BigInt(b);
}

export type AlterIsrResult =
  | { ok: true; leadership: VersionedLeadership }
  /** The key changed since `expected` (new epoch or a concurrent change): the caller re-reads; it must not use the new ISR. */
  | { ok: false; reason: 'fenced' }
  /** etcd could not be reached in time: the write may or may not have been applied (a held request can land later); it is still a compare-and-swap, so the caller keeps the old ISR for the high watermark (safe), re-reads and retries. */
  | { ok: false; reason: 'unavailable' };

/**
 * The leader's one write to the cluster metadata: replace the ISR of a
 * partition it leads, only if the key is still at `expected.revision`.
 * Ordering contract: a shrunk ISR may be used for the high watermark only
 * after `ok: true`; an expanded one counts its new member at once (it can
 * only lower the high watermark).
 */
export interface IsrStore {
  alterIsr(expected: VersionedLeadership, isr: number[]): Promise<AlterIsrResult>;
  /**
   * The partition's leadership as stored now (undefined: no such key). A fenced leader reads it when the
   * revision that fenced it has not reached it by the watch (replica-partition.ts); without it, it only waits.
   */
  readLeadership?(topicId: string, partition: number): Promise<VersionedLeadership | undefined>;
}

/** Which brokers other brokers dial: the replication address of a broker id, as registered (tests map it through a fault proxy). */
export interface PeerDirectory {
  replicationAddress(brokerId: number): { host: string; port: number } | undefined;
}

/** One partition as this broker sees it (GET /v1/cluster, metrics, dashboard). */
export interface ClusterPartitionView {
  topic: string;
  partition: number;
  leader: number;
  leaderEpoch: number;
  replicas: number[];
  isr: number[];
  /** This broker's role for the partition ('none': it holds no replica and reads through the leader). */
  role: 'leader' | 'follower' | 'none';
  highWatermark: number;
  logEndOffset: number;
  /** Leader only: per follower, records behind the leader's log end and ms since it was last caught up. */
  followers?: { brokerId: number; lagRecords: number; lagMs: number; inIsr: boolean }[];
}

/** The cluster as this broker sees it. */
export interface ClusterView {
  brokerId: number;
  /** Broker id of the controller; null while none is elected or etcd is unreachable. */
  controller: number | null;
  /** Whether this broker reaches etcd now. */
  etcdConnected: boolean;
  brokers: BrokerEndpoint[];
  partitions: ClusterPartitionView[];
}
