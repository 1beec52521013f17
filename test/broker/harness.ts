/**
 * Test harness for real-socket broker tests: an in-process broker on port 0
 * with a temp data dir (removed afterwards), and a small protocol client on
 * the `ws` package + the shared frame codec.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';
import {
  decodeFrame, decodeRecordsFrame, encodeFrame, encodeRecordBatch, iterateBatches, decodeRecordBatch, readBatchHeader, FrameKind, PROTOCOL_VERSION,
  type BrokerFrame, type ClientFrame, type Frame, type RecordsFrame, type StartPosition,
} from '@runnel/client/codec';
import { startServer, type RunningServer } from '../../server/src/server.ts';
import { validateLimits, type Limits } from '../../server/src/limits.ts';

process.env.RUNNEL_REQUIRE_NATIVE_UWS = '1';

export interface TestServer extends RunningServer {
  dataDir: string;
  wsUrl: string;
  stop(): Promise<void>;
}

export async function startTestServer(opts: { limits?: Partial<Limits>; dataDir?: string; autoCreateTopics?: boolean; defaultPartitions?: number; port?: number } = {}): Promise<TestServer> {
  const dataDir = opts.dataDir ?? (await mkdtemp(join(tmpdir(), 'runnel-broker-test-')));
  const server = await startServer({
    brokerId: 0, dataDir, host: '127.0.0.1', port: opts.port ?? 0, autoCreateTopics: opts.autoCreateTopics ?? true,
    defaultPartitions: opts.defaultPartitions ?? 1, flushIntervalMs: 0, limits: validateLimits(opts.limits ?? {}),
  }, { log: () => {} });
  return {
    ...server, dataDir, wsUrl: `ws://127.0.0.1:${server.port}/v1/ws`,
    async stop() {
      await server.close();
      if (!opts.dataDir) await rm(dataDir, { recursive: true, force: true });
    },
  };
}

export function makeBatch(values: string[], opts: { producerId?: number; producerEpoch?: number; baseSequence?: number; timestampMs?: number } = {}): Uint8Array {
  const enc = new TextEncoder();
  return encodeRecordBatch({
    producerId: opts.producerId ?? -1, producerEpoch: opts.producerEpoch ?? -1, baseSequence: opts.baseSequence ?? -1,
    baseTimestamp: opts.timestampMs ?? Date.now(),
    records: values.map((v) => ({ value: enc.encode(v), timestampMs: opts.timestampMs ?? Date.now() })),
  });
}

export interface DeliveredRecord { offset: number; value: string }

/** Protocol client: request/answer by requestId, collected frames, decoded records per partition. */
export class TestClient {
  readonly frames: BrokerFrame[] = [];
  readonly records = new Map<string, DeliveredRecord[]>();
  closeCode: number | null = null;
  closeReason = '';
  private nextRequestId = 1;
  private waiters: { match: (f: BrokerFrame) => boolean; resolve: (f: BrokerFrame) => void; reject: (e: Error) => void }[] = [];
  private closedWaiters: (() => void)[] = [];
  /** Decode records (tests) or only count them from batch headers (load). */
  decodeRecords = true;
  recordCount = 0;
  /** Grant back the payload bytes of every RecordsFrame (an SDK whose handler keeps up). */
  autoCredit = false;

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data: Buffer) => this.onMessage(new Uint8Array(data.buffer, data.byteOffset, data.byteLength)));
    ws.on('close', (code, reason) => {
      this.closeCode = code;
      this.closeReason = reason.toString();
      for (const w of this.closedWaiters) w();
      // Requests can no longer be answered; frame waiters that match nothing yet fail now.
      for (const w of this.waiters.splice(0)) w.reject(new Error(`connection closed (${code}) while waiting for a frame`));
    });
    ws.on('error', () => {});
  }

  static async connect(url: string, opts: { hello?: boolean } = {}): Promise<TestClient> {
    const ws = new WebSocket(url, { maxPayload: 64 * 1024 * 1024 });
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    const client = new TestClient(ws);
    if (opts.hello !== false) {
      client.send({ type: 'hello', minVersion: PROTOCOL_VERSION, maxVersion: PROTOCOL_VERSION, clientId: 'test', token: '' });
      await client.waitFor((f) => f.type === 'helloOk' || f.type === 'error');
    }
    return client;
  }

  send(frame: ClientFrame): void {
    this.ws.send(encodeFrame(frame));
  }

  sendRaw(bytes: Uint8Array): void {
    this.ws.send(bytes);
  }

  requestId(): number {
    return this.nextRequestId++;
  }

  /** Sends a request frame (its requestId is filled in) and resolves with the answer of the same requestId. */
  async request<T extends BrokerFrame>(frame: ClientFrame & { requestId: number }, timeoutMs = 10_000): Promise<T> {
    const requestId = this.requestId();
    this.send({ ...frame, requestId } as ClientFrame);
    return (await this.waitFor((f) => 'requestId' in f && f.requestId === requestId, timeoutMs)) as T;
  }

  waitFor(match: (f: BrokerFrame) => boolean, timeoutMs = 10_000): Promise<BrokerFrame> {
    const found = this.frames.find(match);
    if (found) {
      this.frames.splice(this.frames.indexOf(found), 1);
      return Promise.resolve(found);
    }
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`timed out waiting for a frame; last frames: ${JSON.stringify(this.frames.slice(-3).map((f) => f.type))}`)), timeoutMs);
      if (this.closeCode !== null) {
        clearTimeout(timer);
        reject(new Error('connection is closed'));
        return;
      }
      this.waiters.push({ match, resolve: (f) => { clearTimeout(timer); resolve(f); }, reject: (e) => { clearTimeout(timer); reject(e); } });
    });
  }

  waitClosed(timeoutMs = 10_000): Promise<void> {
    if (this.closeCode !== null) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('timed out waiting for close')), timeoutMs);
      this.closedWaiters.push(() => { clearTimeout(timer); resolve(); });
    });
  }

  /** Resolves once `count` records of topic/partition have been delivered. */
  async waitForRecords(topic: string, partition: number, count: number, timeoutMs = 10_000): Promise<DeliveredRecord[]> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const got = this.records.get(`${topic}/${partition}`) ?? [];
      if (got.length >= count) return got;
      if (Date.now() > deadline) throw new Error(`expected ${count} records on ${topic}/${partition}, got ${got.length}`);
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  subscribe(topic: string, partition: number, from: StartPosition, creditBytes = 16 * 1024 * 1024, topicId = '') {
    return this.request<Extract<BrokerFrame, { type: 'subscribed' }>>({ type: 'subscribe', requestId: 0, topic, partition, topicId, from, creditBytes });
  }

  produce(topic: string, partition: number, batch: Uint8Array) {
    return this.request<Extract<BrokerFrame, { type: 'produceAck' }>>({ type: 'produce', requestId: 0, topic, partition, acks: -1, batch });
  }

  close(): void {
    this.ws.close();
  }

  private onMessage(bytes: Uint8Array): void {
    const decoded = bytes[0] === FrameKind.records ? decodeRecordsFrame(bytes) : decodeFrame(bytes);
    if (!decoded.ok) throw new Error(`broker sent an undecodable frame: ${decoded.message}`);
    const frame = decoded.value as Frame as BrokerFrame;
    if (frame.type === 'records') return this.onRecords(frame);
    const i = this.waiters.findIndex((w) => w.match(frame));
    if (i >= 0) {
      const [w] = this.waiters.splice(i, 1);
      w.resolve(frame);
      return;
    }
    this.frames.push(frame);
  }

  private onRecords(frame: RecordsFrame): void {
    if (this.autoCredit) this.send({ type: 'credit', topic: frame.topic, partition: frame.partition, bytes: frame.batches.length });
    if (!this.decodeRecords) {
      // Load mode: count records from batch headers only (no CRC, no record decoding).
      for (let at = 0; at < frame.batches.length;) {
        const h = readBatchHeader(frame.batches, at);
        if (!h.ok) throw new Error(`bad batch in records frame: ${h.message}`);
        this.recordCount += h.value.recordCount;
        at += h.value.totalBytes;
      }
      return;
    }
    const key = `${frame.topic}/${frame.partition}`;
    let list = this.records.get(key);
    if (!list) this.records.set(key, (list = []));
    for (const item of iterateBatches(frame.batches)) {
      if (!item.ok) throw new Error(`bad batch in records frame: ${item.message}`);
      this.recordCount += item.value.header.recordCount;
      if (!this.decodeRecords) continue;
      const batch = decodeRecordBatch(frame.batches, item.value.at);
      if (!batch.ok) throw new Error(batch.message);
      for (const r of batch.value.records) {
        if (r.offset >= frame.highWatermark) throw new Error(`record ${r.offset} at or above highWatermark ${frame.highWatermark}`);
        list.push({ offset: r.offset, value: new TextDecoder().decode(r.value ?? new Uint8Array()) });
      }
    }
  }
}

/** Asserts offsets are exactly start, start+1, ... (after dropping already-delivered ones like the SDK does). */
export function dedupe(records: DeliveredRecord[], from: number): DeliveredRecord[] {
  const out: DeliveredRecord[] = [];
  let next = from;
  for (const r of records) {
    if (r.offset < next) continue;
    out.push(r);
    next = r.offset + 1;
  }
  return out;
}
