/**
 * The broker's Prometheus metrics: one prom-client Registry per broker (so
 * tests can run several brokers in one process) holding the named metrics of
 * the broker contract plus Node's default process metrics.
 *
 * Invariant: call sites update counters once per batch (the RecordBatch
 * header's recordCount), never once per record: metrics must not add
 * per-record work to the produce and fan-out hot paths.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { InlineIo } from './log/inline-io.ts';

/** Latency buckets (seconds) from 100 µs to 10 s: produce acks and fsyncs on this machine sit in the 0.1–50 ms range. */
const LATENCY_BUCKETS_SEC = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10];

export interface RunnelMetrics {
  /** Serialised by `GET /metrics` (`registry.metrics()`, content type `registry.contentType`). */
  readonly registry: Registry;
  readonly recordsIn: Counter<'topic'>;
  readonly bytesIn: Counter<'topic'>;
  readonly recordsOut: Counter<'topic'>;
  readonly bytesOut: Counter<'topic'>;
  /** Produce request → durable ack, seconds; `transport` is `ws` or `http`. */
  readonly produceLatency: Histogram<'transport'>;
  /** Open WebSocket connections. */
  readonly connections: Gauge;
  /** Live topic-partition subscriptions over all connections (SSE streams included). */
  readonly subscriptions: Gauge;
  /**
   * highWatermark − committed offset per group partition; reset and filled at each scrape by one
   * `onCollect` callback (http/routes/health.ts), with at most `maxLagSeries` series (the largest lags).
   */
  readonly consumerLag: Gauge<'group' | 'topic' | 'partition'>;
  readonly fsyncLatency: Histogram;
  /** Produce batch bytes accepted and not yet durable (bounded by maxPendingProduceBytes); set at scrape time. */
  readonly pendingProduceBytes: Gauge;
  /** Bytes buffered by paused (slow) sockets together (bounded by maxPausedBufferedBytes); set by the backpressure sweep (backpressureSweepMs). */
  readonly pausedBufferedBytes: Gauge;
  /** Deliveries dropped or clients paused/closed because of backpressure, by `reason`. */
  readonly backpressureDrops: Counter<'reason'>;
  /** HTTP requests by matched route pattern and status code. */
  readonly httpRequests: Counter<'route' | 'status'>;
  /** Refused authentications and authorizations (`reason`: authentication, authorization, expired, origin, producer). */
  readonly authFailures: Counter<'reason'>;
  /** Requests throttled or refused by a quota, by quota `kind`. */
  readonly quotaThrottled: Counter<'kind'>;
  /** Segment file handles open now (bounded by maxOpenFiles, pinned excess aside); set by the file-handle cache's events (fd-budget.ts). */
  readonly openSegmentFiles: Gauge;
  /** Segment opens refused for lack of descriptors after the idle handles were closed (`errno`: EMFILE process, ENFILE system); each refused request got LIMIT_EXCEEDED. */
  readonly fileOpenFailures: Counter<'errno'>;
  /** Segment writes and fdatasyncs, by `op` (write, sync) and where they ran (`mode`: inline on the event loop, pool = libuv's thread pool; log/inline-io.ts). Read at each scrape from `inlineIo`. */
  readonly segmentIoCalls: Gauge<'op' | 'mode'>;
  /** Reports the process's inline-I/O governors at each scrape (server.ts). */
  reportInlineIo(io: InlineIo): void;
  /** Live brokers registered in the cluster, as this broker sees them (1 on a single node). Cluster gauges: see `onClusterCollect`. */
  readonly clusterBrokers: Gauge;
  /** 1 on the broker that is the elected controller (a single node is its own), else 0. */
  readonly clusterIsController: Gauge;
  /** 1 while this broker reaches etcd (always 0 on a single node, which uses none). */
  readonly clusterEtcdConnected: Gauge;
  /** Partitions this broker leads now. */
  readonly partitionsLed: Gauge;
  /**
   * Per partition, reported by exactly one broker (its leader, or the controller for a leaderless one),
   * so `sum by (topic, partition)` over brokers is that partition: the leader's id (-1 = offline),
   * the ISR size, the assigned replica count. At most `maxPartitionSeries` partitions, unhealthy first.
   */
  readonly partitionLeader: Gauge<'topic' | 'partition'>;
  readonly partitionIsrSize: Gauge<'topic' | 'partition'>;
  readonly partitionReplicas: Gauge<'topic' | 'partition'>;
  /** Partitions this broker leads whose ISR is smaller than their replica set (Kafka's UnderReplicatedPartitions; sum over brokers = cluster total). */
  readonly underReplicatedPartitions: Gauge;
  /** Partitions without a leader; reported by the controller only, 0 elsewhere (Kafka's OfflinePartitionsCount). */
  readonly offlinePartitions: Gauge;
  /** Leader only: records and ms each follower is behind its log end, at most `maxReplicaLagSeries` series (the largest lags). */
  readonly replicaLagRecords: Gauge<'topic' | 'partition' | 'follower'>;
  readonly replicaLagMs: Gauge<'topic' | 'partition' | 'follower'>;
  /**
   * Registers the filler of the cluster gauges above (http/routes/cluster.ts). At each scrape every
   * cluster gauge is reset, then each filler runs once, synchronously, before any cluster gauge is
   * read, so partitions and followers that vanished disappear. Returns a function that unregisters it.
   */
  onClusterCollect(fn: () => void): () => void;
  /**
   * Registers `fn` to run at each scrape, before `consumerLag` is read; the
   * gauge is reset first so groups and partitions that vanished disappear.
   * Returns a function that unregisters it.
   */
  onCollect(fn: () => void | Promise<void>): () => void;
}

/**
 * Creates a fresh registry with all Runnel metrics and default process metrics.
 * @example
 * const metrics = createMetrics();
 * metrics.recordsIn.inc({ topic: 'clicks' }, batch.recordCount);
 * const text = await metrics.registry.metrics();
 */
export function createMetrics(): RunnelMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const collectors = new Set<() => void | Promise<void>>();
  const registers = [registry];

  const counter = <L extends string>(name: string, help: string, labelNames: readonly L[]) =>
    new Counter<L>({ name, help, labelNames, registers });
  let inlineIo: InlineIo | undefined;
  // A gauge read from the governors' own counts at scrape time: no per-call metric update on the append path.
  const segmentIoCalls = new Gauge<'op' | 'mode'>({
    name: 'runnel_segment_io_calls', help: 'Segment writes and fdatasyncs since start, by op and by where they ran (inline on the event loop, or pool)',
    labelNames: ['op', 'mode'], registers,
    collect() {
      if (!inlineIo) return;
      for (const op of ['write', 'sync'] as const) {
        this.set({ op, mode: 'inline' }, inlineIo[op].inlineCalls);
        this.set({ op, mode: 'pool' }, inlineIo[op].pooledCalls);
      }
    },
  });
  const consumerLag = new Gauge<'group' | 'topic' | 'partition'>({
    name: 'runnel_consumer_lag',
    help: 'Records between a group\'s committed offset and the partition high watermark',
    labelNames: ['group', 'topic', 'partition'],
    registers,
    async collect() {
      this.reset();
      for (const fn of collectors) await fn();
    },
  });

  // The cluster gauges share one snapshot per scrape: the first of them collected resets all and runs
  // the fillers; the others, collected in the same synchronous pass of registry.metrics(), only read.
  // NB: the flag clears in a microtask, which runs only after that pass (prom-client calls every
  // metric's get() in one loop and a sync collect() never yields), so the next scrape refills.
  const clusterCollectors = new Set<() => void>();
  const clusterGauges: Gauge<string>[] = [];
  let clusterFilled = false;
  const fillCluster = (): void => {
    if (clusterFilled) return;
    clusterFilled = true;
    queueMicrotask(() => { clusterFilled = false; });
    for (const g of clusterGauges) g.reset();
    for (const fn of clusterCollectors) fn();
  };
  const clusterGauge = <L extends string>(name: string, help: string, labelNames: readonly L[] = []) => {
    const gauge = new Gauge<L>({ name, help, labelNames, registers, collect: fillCluster });
    clusterGauges.push(gauge as Gauge<string>);
    return gauge;
  };
  const tp = ['topic', 'partition'] as const;
  const tpf = ['topic', 'partition', 'follower'] as const;

  return {
    registry,
    recordsIn: counter('runnel_records_in_total', 'Records appended, by topic', ['topic']),
    bytesIn: counter('runnel_bytes_in_total', 'RecordBatch bytes appended, by topic', ['topic']),
    recordsOut: counter('runnel_records_out_total', 'Records delivered to consumers, by topic', ['topic']),
    bytesOut: counter('runnel_bytes_out_total', 'RecordBatch bytes delivered to consumers, by topic', ['topic']),
    produceLatency: new Histogram<'transport'>({
      name: 'runnel_produce_latency_seconds',
      help: 'Produce request to durable acknowledgement',
      labelNames: ['transport'],
      buckets: LATENCY_BUCKETS_SEC,
      registers,
    }),
    connections: new Gauge({ name: 'runnel_connections', help: 'Open WebSocket connections', registers }),
    subscriptions: new Gauge({ name: 'runnel_subscriptions', help: 'Live partition subscriptions (WebSocket and SSE)', registers }),
    consumerLag,
    fsyncLatency: new Histogram({ name: 'runnel_fsync_latency_seconds', help: 'fdatasync duration of group commits', buckets: LATENCY_BUCKETS_SEC, registers }),
    pendingProduceBytes: new Gauge({ name: 'runnel_pending_produce_bytes', help: 'Produce batch bytes accepted and not yet durable, all connections and HTTP', registers }),
    pausedBufferedBytes: new Gauge({ name: 'runnel_paused_buffered_bytes', help: 'Bytes buffered by paused (slow) sockets together', registers }),
    backpressureDrops: counter('runnel_backpressure_drops_total', 'Deliveries dropped or clients cut because of backpressure, by reason', ['reason']),
    httpRequests: counter('runnel_http_requests_total', 'HTTP requests by route pattern and status', ['route', 'status']),
    authFailures: counter('runnel_auth_failures_total', 'Refused authentications and authorizations, by reason', ['reason']),
    quotaThrottled: counter('runnel_quota_throttled_total', 'Requests throttled or refused by a quota, by kind', ['kind']),
    openSegmentFiles: new Gauge({ name: 'runnel_open_segment_files', help: 'Segment file handles open (bounded by maxOpenFiles)', registers }),
    fileOpenFailures: counter('runnel_file_open_failures_total', 'Segment opens refused for lack of file descriptors, by errno', ['errno']),
    clusterBrokers: clusterGauge('runnel_cluster_brokers', 'Live brokers registered in the cluster, as this broker sees them'),
    clusterIsController: clusterGauge('runnel_cluster_is_controller', '1 on the elected controller, else 0'),
    clusterEtcdConnected: clusterGauge('runnel_cluster_etcd_connected', '1 while this broker reaches etcd, else 0'),
    partitionsLed: clusterGauge('runnel_partitions_led', 'Partitions this broker leads'),
    partitionLeader: clusterGauge('runnel_partition_leader', 'Leader broker id of a partition (-1 = offline); reported by its leader, or by the controller when it has none', tp),
    partitionIsrSize: clusterGauge('runnel_partition_isr_size', 'In-sync replicas of a partition; reported by its leader, or by the controller when it has none', tp),
    partitionReplicas: clusterGauge('runnel_partition_replicas', 'Assigned replicas of a partition; reported by its leader, or by the controller when it has none', tp),
    underReplicatedPartitions: clusterGauge('runnel_under_replicated_partitions', 'Partitions led by this broker with fewer in-sync replicas than replicas'),
    offlinePartitions: clusterGauge('runnel_offline_partitions', 'Partitions without a leader (reported by the controller; 0 on other brokers)'),
    replicaLagRecords: clusterGauge('runnel_replica_lag_records', 'Records a follower is behind the leader\'s log end (reported by the leader)', tpf),
    replicaLagMs: clusterGauge('runnel_replica_lag_ms', 'Milliseconds since a follower was last caught up with the leader (reported by the leader)', tpf),
    onClusterCollect(fn) {
      clusterCollectors.add(fn);
      return () => clusterCollectors.delete(fn);
    },
    segmentIoCalls,
    reportInlineIo(io) {
      inlineIo = io;
    },
    onCollect(fn) {
      collectors.add(fn);
      return () => collectors.delete(fn);
    },
  };
}
