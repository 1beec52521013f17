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
    onCollect(fn) {
      collectors.add(fn);
      return () => collectors.delete(fn);
    },
  };
}
