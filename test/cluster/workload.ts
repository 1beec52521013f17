/**
 * The load a fault schedule runs under, recorded into a `HistoryRecorder`:
 *
 * - producers: SDK clients (idempotent, acks=all, every broker's URL, each
 *   starting at another broker), paced at `ratePerSec`, round-robin over the
 *   partitions; each value names its producer and sequence (`p0:17`);
 * - an SDK consumer from earliest (stored offsets in memory, so a reconnect
 *   resumes where it was);
 * - an HTTP consumer per partition: long-poll fetches from earliest, moving to
 *   the next broker on any error, committing its position to a consumer group
 *   (standalone commits) and reading the group's offsets back through other
 *   brokers.
 *
 * Everything it sees goes into the history; it judges nothing.
 */
import { WebSocket } from 'ws';
import { createClient, type RunnelClient, type WebSocketConstructor } from '@runnel/client';
import { seededRandom } from '../../client-sdk/src/reconnect-policy.ts';
import type { HistoryRecorder } from './history.ts';

const WS = WebSocket as unknown as WebSocketConstructor;
/** Error messages kept per kind (SDK, HTTP) for the report. */
const MAX_ERRORS_KEPT = 200;

export interface WorkloadLimits {
  /** Unsettled sends per producer; past it the producer skips its turn (a stalled cluster must not grow the outbox without bound). */
  maxPendingSends: number;
  /** Pacing tick of the producers. */
  tickMs: number;
  /** Long-poll wait of the HTTP consumer. */
  fetchMaxWaitMs: number;
  /** Records per HTTP fetch. */
  fetchMaxRecords: number;
  /** How long one HTTP request may take before it is abandoned and the next broker tried (a paused broker never answers). */
  httpRequestTimeoutMs: number;
  /** Pause after a failed HTTP request before the next broker is tried. */
  httpRetryDelayMs: number;
  /** How often the HTTP consumer commits its position and reads the group's offsets back. */
  commitIntervalMs: number;
  /** SDK request timeout (a produce through a broker that lost its leader is retried after it). */
  sdkRequestTimeoutMs: number;
}

export const defaultWorkloadLimits: WorkloadLimits = {
  maxPendingSends: 5_000,
  tickMs: 20,
  fetchMaxWaitMs: 500,
  fetchMaxRecords: 500,
  httpRequestTimeoutMs: 3_000,
  httpRetryDelayMs: 100,
  commitIntervalMs: 500,
  sdkRequestTimeoutMs: 5_000,
};

export interface WorkloadOptions {
  topic: string;
  partitions: number;
  /** Records per second per producer. */
  ratePerSec: number;
  producers?: number;
  wsUrls: string[];
  httpUrls: string[];
  recorder: HistoryRecorder;
  /** Group the HTTP consumer commits to; none = no commits. */
  group?: string;
  seed: number;
  limits?: Partial<WorkloadLimits>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** `urls` rotated to start at index `i` (so clients spread over brokers). */
const rotate = <T>(urls: T[], i: number): T[] => urls.map((_, k) => urls[(k + i) % urls.length]);

export class Workload {
  readonly #o: WorkloadOptions;
  readonly #limits: WorkloadLimits;
  readonly #producers: RunnelClient[] = [];
  readonly #pending: Set<Promise<unknown>>[] = [];
  #consumer: RunnelClient | undefined;
  #producing = true;
  #consuming = true;
  #closed = false;
  #producersClosed = false;
  readonly #loops: Promise<void>[] = [];
  /** Next offset the HTTP consumer will ask for, per partition. */
  readonly httpPosition: number[];
  /** Next offset the SDK consumer expects, per partition. */
  readonly sdkPosition: number[];
  /** Sends so far per producer. */
  readonly sent: number[] = [];
  readonly #errors: string[] = [];
  readonly #httpErrors: string[] = [];

  private constructor(options: WorkloadOptions) {
    this.#o = options;
    this.#limits = { ...defaultWorkloadLimits, ...options.limits };
    this.httpPosition = Array.from({ length: options.partitions }, () => 0);
    this.sdkPosition = Array.from({ length: options.partitions }, () => 0);
  }

  /** Starts producers and consumers at once. */
  static start(options: WorkloadOptions): Workload {
    const w = new Workload(options);
    const count = options.producers ?? 2;
    const common = {
      WebSocket: WS, requestTimeoutMs: w.#limits.sdkRequestTimeoutMs, reconnect: { initialDelayMs: 50, maxDelayMs: 500 }, beacon: false as const,
    };
    for (let i = 0; i < count; i++) {
      const client = createClient({ ...common, urls: rotate(options.wsUrls, i), clientId: `faults-p${i}`, random: seededRandom(options.seed * 31 + i) });
      client.on('error', (e) => w.noteError(`p${i}: ${e.name}: ${e.message}`));
      w.#producers.push(client);
      w.#pending.push(new Set());
      w.sent.push(0);
      w.#loops.push(w.produceLoop(i));
    }
    w.startSdkConsumer(count);
    for (let p = 0; p < options.partitions; p++) w.#loops.push(w.httpConsumeLoop(p));
    if (options.group) w.#loops.push(w.commitLoop(options.group));
    return w;
  }

  /** Client errors seen, SDK ones first (for the report; the checker judges the history, not these). */
  get errors(): readonly string[] {
    return [...this.#errors, ...this.#httpErrors];
  }

  /** SDK errors and not-recovered events (kept apart from HTTP retries, which a fault makes plentiful). */
  private noteError(message: string): void {
    if (this.#errors.length < MAX_ERRORS_KEPT) this.#errors.push(message);
  }

  private noteHttpError(message: string): void {
    if (this.#httpErrors.length < MAX_ERRORS_KEPT) this.#httpErrors.push(message);
  }

  private async produceLoop(i: number): Promise<void> {
    const { topic, partitions, ratePerSec, recorder } = this.#o;
    const client = this.#producers[i];
    const pending = this.#pending[i];
    const name = `p${i}`;
    const startedAt = Date.now();
    while (this.#producing) {
      const due = Math.floor(((Date.now() - startedAt) / 1000) * ratePerSec);
      while (this.sent[i] < due && pending.size < this.#limits.maxPendingSends && this.#producing) {
        const seq = this.sent[i]++;
        const partition = seq % partitions;
        const value = `${name}:${seq}`;
        const record = recorder.send(name, seq, { topic, partition }, value, Date.now());
        const settled = client.producer.send(topic, value, { partition }).then(
          (ack) => { record.outcome = { kind: 'acked', offset: ack.offset, ackedAtMs: Date.now() }; },
          (error: { name?: string; message?: string }) => { record.outcome = { kind: 'failed', code: error?.name ?? 'Error', atMs: Date.now() }; },
        );
        pending.add(settled);
        void settled.finally(() => pending.delete(settled));
      }
      await sleep(this.#limits.tickMs);
    }
  }

  private startSdkConsumer(index: number): void {
    const { topic, recorder, wsUrls } = this.#o;
    const consumer = 'sdk';
    recorder.consumers.add(consumer);
    const client = createClient({
      urls: rotate(wsUrls, index), WebSocket: WS, clientId: 'faults-sdk-consumer', requestTimeoutMs: this.#limits.sdkRequestTimeoutMs,
      reconnect: { initialDelayMs: 50, maxDelayMs: 500 }, beacon: false, random: seededRandom(this.#o.seed * 31 + 97),
    });
    client.on('error', (e) => this.noteError(`${consumer}: ${e.name}: ${e.message}`));
    this.#consumer = client;
    const sub = client.subscribe<unknown>(topic, (r) => {
      recorder.deliver({ consumer, topic, partition: r.partition, offset: r.offset, value: typeof r.value === 'string' ? r.value : JSON.stringify(r.value), atMs: Date.now() });
      this.sdkPosition[r.partition] = Math.max(this.sdkPosition[r.partition], r.offset + 1);
    }, { consumerId: consumer, reset: 'earliest' });
    sub.on('notrecovered', (e) => this.noteError(`${consumer}: not recovered ${JSON.stringify(e)}`));
  }

  private async httpGet(url: string): Promise<{ status: number; json: any }> {
    const response = await fetch(url, { signal: AbortSignal.timeout(this.#limits.httpRequestTimeoutMs) });
    const text = await response.text();
    return { status: response.status, json: text ? JSON.parse(text) : undefined };
  }

  private async httpConsumeLoop(partition: number): Promise<void> {
    const { topic, recorder, httpUrls } = this.#o;
    const consumer = 'http';
    recorder.consumers.add(consumer);
    let broker = partition % httpUrls.length;
    while (this.#consuming) {
      const url = `${httpUrls[broker]}/v1/topics/${encodeURIComponent(topic)}/partitions/${partition}/records?offset=${this.httpPosition[partition]}&maxRecords=${this.#limits.fetchMaxRecords}&maxWaitMs=${this.#limits.fetchMaxWaitMs}`;
      try {
        const { status, json } = await this.httpGet(url);
        if (status !== 200) throw new Error(`HTTP ${status} ${JSON.stringify(json)}`);
        for (const r of json.records as { offset: number; value: unknown }[]) {
          recorder.deliver({ consumer, topic, partition, offset: r.offset, value: typeof r.value === 'string' ? r.value : JSON.stringify(r.value), atMs: Date.now(), via: httpUrls[broker] });
        }
        // NB: the position follows what was delivered: an answer whose records jump ahead shows up as a gap, not a silent skip.
        const last = json.records.length > 0 ? json.records[json.records.length - 1].offset + 1 : this.httpPosition[partition];
        this.httpPosition[partition] = Math.max(this.httpPosition[partition], last);
      } catch (error) {
        if (!this.#consuming) return;
        this.noteHttpError(`http ${partition} via ${httpUrls[broker]}: ${error instanceof Error ? error.message : String(error)}`);
        broker = (broker + 1) % httpUrls.length;
        await sleep(this.#limits.httpRetryDelayMs);
      }
    }
  }

  /** Commits the HTTP consumer's positions through one broker, then reads the group's offsets back through the next. */
  private async commitLoop(group: string): Promise<void> {
    const { topic, recorder, httpUrls, partitions } = this.#o;
    let broker = 0;
    const committed = Array.from({ length: partitions }, () => 0);
    while (this.#consuming) {
      await sleep(this.#limits.commitIntervalMs);
      const offsets = this.httpPosition.map((offset, partition) => ({ topic, partition, offset })).filter((o) => o.offset > committed[o.partition]);
      broker = (broker + 1) % httpUrls.length;
      try {
        if (offsets.length > 0) {
          const response = await fetch(`${httpUrls[broker]}/v1/groups/${group}/offsets`, {
            method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ offsets }),
            signal: AbortSignal.timeout(this.#limits.httpRequestTimeoutMs),
          });
          const text = await response.text();
          if (response.status !== 200) throw new Error(`commit HTTP ${response.status} ${text}`);
          const atMs = Date.now();
          for (const o of offsets) {
            recorder.groupOffsets.push({ kind: 'committed', group, ...o, atMs, via: httpUrls[broker] });
            committed[o.partition] = o.offset;
          }
        }
        const reader = (broker + 1) % httpUrls.length;
        const requestedAtMs = Date.now();
        const { status, json } = await this.httpGet(`${httpUrls[reader]}/v1/groups/${group}/offsets?topic=${encodeURIComponent(topic)}`);
        if (status !== 200) throw new Error(`offset fetch HTTP ${status} ${JSON.stringify(json)}`);
        const atMs = Date.now();
        for (const o of json.offsets as { topic: string; partition: number; offset: number }[]) {
          recorder.groupOffsets.push({ kind: 'observed', group, topic: o.topic, partition: o.partition, offset: o.offset, atMs, requestedAtMs, via: httpUrls[reader] });
        }
      } catch (error) {
        if (!this.#consuming) return;
        this.noteHttpError(`group ${group} via ${httpUrls[broker]}: ${error instanceof Error ? error.message : String(error)}`);
      }
    }
  }

  /** Records not yet settled, over all producers. */
  get pendingSends(): number {
    return this.#pending.reduce((n, s) => n + s.size, 0);
  }

  /**
   * Stops sending, waits (up to `timeoutMs`) for every send to settle, then
   * closes the producers, so no resend lands after the final state is read;
   * answers how many sends were still pending (they end as failed).
   */
  async stopProducing(timeoutMs: number): Promise<number> {
    this.#producing = false;
    const deadline = Date.now() + timeoutMs;
    while (this.pendingSends > 0 && Date.now() < deadline) await sleep(50);
    const pending = this.pendingSends;
    await Promise.all(this.#loops.slice(0, this.#producers.length));
    await this.closeProducers();
    return pending;
  }

  private async closeProducers(): Promise<void> {
    if (this.#producersClosed) return;
    this.#producersClosed = true;
    await Promise.all(this.#producers.map((c) => c.close()));
  }

  /** Waits until both consumers reached `highWatermarks` (per partition); answers the partitions still behind. */
  async waitConsumers(highWatermarks: number[], timeoutMs: number): Promise<string[]> {
    const deadline = Date.now() + timeoutMs;
    const behind = (): string[] => highWatermarks.flatMap((hw, p) => [
      ...(this.sdkPosition[p] < hw ? [`sdk ${p}@${this.sdkPosition[p]}/${hw}`] : []),
      ...(this.httpPosition[p] < hw ? [`http ${p}@${this.httpPosition[p]}/${hw}`] : []),
    ]);
    while (behind().length > 0 && Date.now() < deadline) await sleep(50);
    return behind();
  }

  /** Stops the consumers and closes every client. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#producing = false;
    this.#consuming = false;
    await Promise.all(this.#loops);
    await this.closeProducers();
    await this.#consumer?.close();
  }
}
