/**
 * Client process for `broker.bench.ts` (not a benchmark itself). Roles:
 *   produce <wsUrl> <topic> <partitions> <connections> <recordsPerBatch> <inflight>
 *   subscribe <wsUrl> <topic> <connections>
 *   latency-produce <wsUrl> <topic> <recordsPerSec> <recordsPerBatch>
 *   latency-subscribe <wsUrl> <topic>
 * Protocol with the parent: prints `{"ready":true}` once connected; reads
 * `start` and `stop` lines on stdin; prints one JSON result line on stop.
 * Counting is per batch (recordCount from the batch header), never per record;
 * fan-out subscribers read raw sockets (raw-ws-reader.ts), not `ws`.
 */
import { createInterface } from 'node:readline';
import WebSocket from 'ws';
import { FrameKind, PROTOCOL_VERSION, decodeFrame, decodeRecordBatch, encodeFrame, encodeRecordBatch } from '@runnel/client/codec';
import { openRawSubscriber } from './raw-subscriber.ts';

const [role, wsUrl, topic, ...rest] = process.argv.slice(2);
const enc = new TextEncoder();
let running = false;
let stopResolve: () => void = () => {};
const stopped = new Promise<void>((r) => { stopResolve = r; });
createInterface({ input: process.stdin }).on('line', (line) => {
  if (line === 'start') running = true;
  if (line === 'stop') { running = false; stopResolve(); }
});

async function connect(): Promise<WebSocket> {
  const ws = new WebSocket(wsUrl, { perMessageDeflate: false, maxPayload: 64 * 1024 * 1024 });
  ws.binaryType = 'nodebuffer';
  await new Promise<void>((resolve, reject) => { ws.once('open', () => resolve()); ws.once('error', reject); });
  ws.send(encodeFrame({ type: 'hello', minVersion: PROTOCOL_VERSION, maxVersion: PROTOCOL_VERSION, clientId: role, token: '' }));
  return ws;
}

function emit(o: object): void {
  process.stdout.write(`${JSON.stringify(o)}\n`);
}

async function produce(): Promise<void> {
  const [partitions, connections, recordsPerBatch, inflight, maxRecordsPerSec = 0] = rest.map(Number);
  const batch = encodeRecordBatch({ baseTimestamp: Date.now(), records: Array.from({ length: recordsPerBatch }, (_, i) => ({ value: enc.encode(`${i}`.padEnd(100, 'x')) })) });
  const sockets = await Promise.all(Array.from({ length: connections }, () => connect()));
  emit({ ready: true });
  await new Promise<void>((r) => { const t = setInterval(() => { if (running) { clearInterval(t); r(); } }, 5); });
  let acked = 0;
  let errors = 0;
  const startedMs = performance.now();
  sockets.forEach((ws, k) => {
    const partition = (process.pid + k) % partitions;
    const frame = encodeFrame({ type: 'produce', requestId: 1, topic, partition, acks: -1, batch });
    ws.on('message', (data: Buffer) => {
      if (data[0] !== FrameKind.produceAck) return;
      const d = decodeFrame(data);
      if (d.ok && d.value.type === 'produceAck' && d.value.errorCode !== 0) errors++;
      else acked += recordsPerBatch;
      if (!running) return;
      // Paced mode: hold the next send until the aggregate rate is back under maxRecordsPerSec.
      const aheadMs = maxRecordsPerSec > 0 ? (acked * 1000) / maxRecordsPerSec - (performance.now() - startedMs) : 0;
      if (aheadMs > 0) setTimeout(() => running && ws.send(frame), aheadMs);
      else ws.send(frame);
    });
    for (let i = 0; i < inflight; i++) ws.send(frame);
  });
  await stopped;
  const elapsedSec = (performance.now() - startedMs) / 1000;
  emit({ acked, errors, elapsedSec });
  process.exit(0);
}

async function subscribe(): Promise<void> {
  const [connections] = rest.map(Number);
  let records = 0;
  let counting = false;
  // Raw sockets (raw-subscriber.ts): the subscribers count from headers and leave the CPU to the broker.
  const open = async (): Promise<void> => {
    const sub = await openRawSubscriber(wsUrl, topic, role, (count) => { if (counting) records += count; });
    sub.send({ type: 'subscribe', requestId: 1, topic, partition: 0, topicId: '', from: { kind: 'latest' }, creditBytes: 48 * 1024 * 1024 });
  };
  for (let i = 0; i < connections; i += 200) await Promise.all(Array.from({ length: Math.min(200, connections - i) }, open));
  emit({ ready: true });
  await new Promise<void>((r) => { const t = setInterval(() => { if (running) { clearInterval(t); r(); } }, 5); });
  counting = true;
  const startedMs = performance.now();
  await stopped;
  counting = false;
  emit({ records, elapsedSec: (performance.now() - startedMs) / 1000 });
  process.exit(0);
}

/** Latency run: the first second of records warms the three processes up and is left out of p50/p99. */
const WARM_UP_MS = 1000;
const nowMs = (): number => performance.timeOrigin + performance.now();

async function latencyProduce(): Promise<void> {
  const [recordsPerSec, recordsPerBatch] = rest.map(Number);
  const ws = await connect();
  emit({ ready: true });
  await new Promise<void>((r) => { const t = setInterval(() => { if (running) { clearInterval(t); r(); } }, 5); });
  const intervalMs = (1000 * recordsPerBatch) / recordsPerSec;
  const startedMs = nowMs();
  let sent = 0;
  const payload = 'x'.repeat(80);
  while (running) {
    // Timer pacing, no busy-wait: a spinning producer takes a core from the
    // broker and the subscriber on this 2-core machine and inflated p99 from
    // ~7 ms to 13–230 ms. A batch that goes out late is stamped when it goes
    // out, so timer jitter moves the rate, not the measured latency.
    const wait = startedMs + sent * intervalMs - nowMs();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    else await new Promise((r) => setImmediate(r)); // always yield: socket writes and stdin need the event loop
    const stamp = nowMs().toFixed(3);
    const batch = encodeRecordBatch({ baseTimestamp: Date.now(), records: Array.from({ length: recordsPerBatch }, () => ({ value: enc.encode(`${stamp} ${payload}`) })) });
    ws.send(encodeFrame({ type: 'produce', requestId: ++sent, topic, partition: 0, acks: -1, batch }));
  }
  emit({ sentRecords: sent * recordsPerBatch });
  process.exit(0);
}

async function latencySubscribe(): Promise<void> {
  const ws = await connect();
  const latencies: number[] = [];
  let warmUntilMs = Infinity; // records stamped in the first WARM_UP_MS (JIT, first fsyncs) are not counted
  ws.on('message', (data: Buffer) => {
    if (data[0] !== FrameKind.records) return;
    const at = 3 + data.readUInt16BE(1) + 16;
    const received = nowMs();
    const batch = decodeRecordBatch(data, at);
    if (!batch.ok) return;
    const first = batch.value.records[0];
    const sentMs = Number(new TextDecoder().decode(first.value ?? new Uint8Array()).split(' ')[0]);
    const count = data.readUInt32BE(at + 57);
    if (warmUntilMs === Infinity) warmUntilMs = sentMs + WARM_UP_MS;
    if (sentMs < warmUntilMs) return;
    for (let i = 0; i < count; i++) latencies.push(received - sentMs); // per record: every record of the batch shares it
  });
  ws.send(encodeFrame({ type: 'subscribe', requestId: 1, topic, partition: 0, topicId: '', from: { kind: 'latest' }, creditBytes: 64 * 1024 * 1024 }));
  emit({ ready: true });
  await stopped;
  latencies.sort((a, b) => a - b);
  const q = (p: number): number => latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] ?? NaN;
  emit({ records: latencies.length, p50Ms: q(0.5), p99Ms: q(0.99), maxMs: latencies[latencies.length - 1] ?? NaN });
  process.exit(0);
}

const roles: Record<string, () => Promise<void>> = { produce, subscribe, 'latency-produce': latencyProduce, 'latency-subscribe': latencySubscribe };
await roles[role]();
