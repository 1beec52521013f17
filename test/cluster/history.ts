/**
 * What a fault-injection run records (docs/cluster.md "Fault-injection
 * suite"): every record a producer sent and how it ended, every delivery to
 * every consumer, every committed and observed group offset, each injected
 * fault, and at the end the log as clients read it plus the stored bytes of
 * every replica. `history-checker.ts` judges it; this file holds only the
 * shapes and the in-process recorder (pure: time comes in as `atMs`).
 *
 * Values are strings `"<producer>:<seq>"` (JSON strings on the wire), so a
 * record is identified by its value alone, wherever it lands.
 */

/** The faults a schedule injects (fault-schedule.ts); the checker counts them and measures failover for some. */
export const FAULT_KINDS = [
  'killLeader',
  'killFollower',
  'killController',
  'pauseLeader',
  'partitionLeader',
  'partitionPair',
  'isolateLeaderFromEtcd',
  'killEtcd',
  'truncateFollowerTail',
  'bitflipFollowerTail',
  'killAll',
] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

/** Faults whose failover (fault → first acknowledged write on each partition the target led) is `killFailoverP99Ms`. */
export const KILL_FAILOVER_KINDS: readonly FaultKind[] = ['killLeader', 'killController'];
/** Faults whose failover is `pauseFailoverP99Ms`: the leader is alive but unreachable (SIGSTOP, cut from its followers or from etcd). */
export const PAUSE_FAILOVER_KINDS: readonly FaultKind[] = ['pauseLeader', 'partitionLeader', 'isolateLeaderFromEtcd'];

export interface TopicPartition {
  topic: string;
  partition: number;
}

export type SendOutcome =
  /** The SDK resolved the send: the broker acknowledged it (acks=all). offset −1 = acknowledged as a duplicate below the broker's window. */
  | { kind: 'acked'; offset: number; ackedAtMs: number }
  /** The SDK rejected the send: the outcome is unknown (it may or may not be in the log, at most once). */
  | { kind: 'failed'; code: string; atMs: number }
  /** Neither by the end of the run. */
  | { kind: 'pending' };

export interface ProducedRecord extends TopicPartition {
  producer: string;
  /** Per producer, from 0, in send order. */
  seq: number;
  value: string;
  sentAtMs: number;
  outcome: SendOutcome;
}

/** One record handed to one consumer (SDK handler call or one record of an HTTP fetch answer). */
export interface Delivery extends TopicPartition {
  consumer: string;
  offset: number;
  value: string;
  atMs: number;
  /** Which broker answered (HTTP consumers), for the report. */
  via?: string;
}

/**
 * Group offsets: `committed` = a commit the broker acknowledged (durable);
 * `observed` = an offset fetch answered at `atMs` for a request sent at
 * `requestedAtMs`. Committed offsets are the next offset to consume.
 */
export type GroupOffsetEvent = TopicPartition & { group: string; offset: number; atMs: number; /** The broker asked, for the report. */ via?: string } & (
  | { kind: 'committed' }
  | { kind: 'observed'; requestedAtMs: number }
);

export interface FaultRecord {
  kind: FaultKind;
  /** When the fault took effect (the signal was sent, the link cut). */
  atMs: number;
  /** When it was undone (restart, SIGCONT, heal); undefined if never. */
  healedAtMs?: number;
  /** Who it hit, for the report, e.g. "broker 2", "1<->3 blackhole". */
  target: string;
  /** Partitions the target led when the fault began (their failover is measured for KILL/PAUSE kinds). */
  ledPartitions: TopicPartition[];
}

/** A change of a partition's leadership as the cluster view showed it (polled during the run; for failover diagnosis). */
export interface LeadershipObservation extends TopicPartition {
  atMs: number;
  leader: number;
  leaderEpoch: number;
  isr: number[];
  controller: number | null;
}

/** One stored batch as it lies in a segment file: its bytes decide replica equality. */
export interface StoredBatch {
  baseOffset: number;
  lastOffset: number;
  bytes: Uint8Array;
}

export interface ReplicaLog {
  brokerId: number;
  /** Batches from the replica's segment files, in file order. */
  batches: StoredBatch[];
}

/** The end state of one partition after the run quiesced. */
export interface PartitionFinal extends TopicPartition {
  leader: number;
  logStartOffset: number;
  highWatermark: number;
  /** The log below the high watermark as clients read it (HTTP fetch from the leader): offset and value. */
  log: { offset: number; value: string }[];
  replicas: ReplicaLog[];
}

export interface History {
  seed: number;
  records: ProducedRecord[];
  deliveries: Delivery[];
  groupOffsets: GroupOffsetEvent[];
  faults: FaultRecord[];
  partitions: PartitionFinal[];
  /** Consumers that read from the earliest offset: each must see every offset below the high watermark, once, in order. */
  consumers: string[];
  /** Leadership changes seen while the run went on (optional: diagnosis only). */
  leadership?: LeadershipObservation[];
  endedAtMs: number;
}

/** Collects a run's events in memory (the workload and the fault driver write here). */
export class HistoryRecorder {
  readonly records: ProducedRecord[] = [];
  readonly deliveries: Delivery[] = [];
  readonly groupOffsets: GroupOffsetEvent[] = [];
  readonly faults: FaultRecord[] = [];
  readonly consumers = new Set<string>();
  readonly leadership: LeadershipObservation[] = [];

  constructor(readonly seed: number) {}

  /** Registers a send; settle its `outcome` through the returned record. */
  send(producer: string, seq: number, tp: TopicPartition, value: string, sentAtMs: number): ProducedRecord {
    const record: ProducedRecord = { producer, seq, ...tp, value, sentAtMs, outcome: { kind: 'pending' } };
    this.records.push(record);
    return record;
  }

  deliver(delivery: Delivery): void {
    this.deliveries.push(delivery);
  }

  fault(record: FaultRecord): FaultRecord {
    this.faults.push(record);
    return record;
  }

  finish(partitions: PartitionFinal[], endedAtMs: number): History {
    return {
      seed: this.seed, records: this.records, deliveries: this.deliveries, groupOffsets: this.groupOffsets,
      faults: this.faults, partitions, consumers: [...this.consumers], leadership: this.leadership, endedAtMs,
    };
  }
}
