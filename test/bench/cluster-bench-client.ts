/**
 * Load generator process for `cluster.bench.ts` (not a benchmark itself):
 *   produce <topic> <recordsPerBatch> <inflight> <maxRecordsPerSec> <wsUrl>#<partition> [<wsUrl>#<partition>...]
 * One WebSocket per target, each keeping `inflight` acks=-1 produce frames of
 * one pre-encoded batch of 100-byte records outstanding (the same batch and
 * frame shape as broker-bench-client.ts's produce role). Targets name the
 * broker that leads each partition, so the cluster measures replication and
 * not forwarding; on a single node every target is the same URL.
 *
 * Protocol with the parent (as broker-bench-client.ts): prints
 * `{"ready":true}` once connected, reads `start`/`stop` lines on stdin,
 * prints one JSON result line on stop; a `mark` line between them ends a
 * warm-up (counts restart there). Counting is per ack, never per record.
 */
import { createInterface } from 'node:readline';
import WebSocket from 'ws';
import { FrameKind, PROTOCOL_VERSION, decodeFrame, encodeFrame, encodeRecordBatch } from '@runnel/client/codec';

/** Bytes of each record's value: the brief's (and broker.bench.ts's) record size. */
export const RECORD_VALUE_BYTES = 100;

const [role, topic, recordsPerBatchArg, inflightArg, maxRecordsPerSecArg, ...targets] = process.argv.slice(2);
if (role !== 'produce' || targets.length === 0) {
  console.error('usage: cluster-bench-client.ts produce <topic> <recordsPerBatch> <inflight> <maxRecordsPerSec, 0 = unpaced> <wsUrl>#<partition>...');
  process.exit(2);
}
const recordsPerBatch = Number(recordsPerBatchArg);
const inflight = Number(inflightArg);
/** > 0: this process's sends are held to this rate (to compare CPU per MB at equal load); 0: as fast as acks come. */
const maxRecordsPerSec = Number(maxRecordsPerSecArg);

let running = false;
let stopResolve: () => void = () => {};
const stopped = new Promise<void>((r) => { stopResolve = r; });
let startResolve: () => void = () => {};
const started = new Promise<void>((r) => { startResolve = r; });
/** `mark`: the warm-up ends; counting restarts from zero here (JIT and first fdatasyncs left out). */
let onMark: () => void = () => {};
createInterface({ input: process.stdin }).on('line', (line) => {
  if (line === 'start') { running = true; startResolve(); }
  if (line === 'mark') onMark();
  if (line === 'stop') { running = false; stopResolve(); }
});

async function connect(wsUrl: string): Promise<WebSocket> {
  const ws = new WebSocket(wsUrl, { perMessageDeflate: false, maxPayload: 64 * 1024 * 1024 });
  ws.binaryType = 'nodebuffer';
  await new Promise<void>((resolve, reject) => { ws.once('open', () => resolve()); ws.once('error', reject); });
  ws.send(encodeFrame({ type: 'hello', minVersion: PROTOCOL_VERSION, maxVersion: PROTOCOL_VERSION, clientId: 'cluster-bench', token: '' }));
  return ws;
}

const enc = new TextEncoder();
const batch = encodeRecordBatch({ baseTimestamp: Date.now(), records: Array.from({ length: recordsPerBatch }, (_, i) => ({ value: enc.encode(`${i}`.padEnd(RECORD_VALUE_BYTES, 'x')) })) });
const parsed = targets.map((t) => {
  const hash = t.lastIndexOf('#');
  return { wsUrl: t.slice(0, hash), partition: Number(t.slice(hash + 1)) };
});
const sockets = await Promise.all(parsed.map((t) => connect(t.wsUrl)));
process.stdout.write(`${JSON.stringify({ ready: true })}\n`);
await started;

let acked = 0;
/** Error acks by error code: a cluster that refuses (NOT_ENOUGH_REPLICAS, LIMIT_EXCEEDED) must show, not just run slower. */
let errors: Record<string, number> = {};
let startedMs = performance.now();
const pacingFromMs = startedMs;
let sent = 0;
onMark = () => {
  acked = 0;
  errors = {};
  startedMs = performance.now();
};
sockets.forEach((ws, k) => {
  const frame = encodeFrame({ type: 'produce', requestId: 1, topic, partition: parsed[k].partition, acks: -1, batch });
  ws.on('message', (data: Buffer) => {
    if (data[0] !== FrameKind.produceAck) return;
    const d = decodeFrame(data);
    if (d.ok && d.value.type === 'produceAck' && d.value.errorCode !== 0) {
      errors[d.value.errorCode] = (errors[d.value.errorCode] ?? 0) + 1;
    } else acked += recordsPerBatch;
    if (!running) return;
    // Paced: the next send waits until this process is back under maxRecordsPerSec (counted from the start, warm-up included).
    sent += recordsPerBatch;
    const aheadMs = maxRecordsPerSec > 0 ? (sent * 1000) / maxRecordsPerSec - (performance.now() - pacingFromMs) : 0;
    if (aheadMs > 1) setTimeout(() => running && ws.send(frame), aheadMs);
    else ws.send(frame);
  });
  for (let i = 0; i < inflight; i++) ws.send(frame);
});
await stopped;
const elapsedSec = (performance.now() - startedMs) / 1000;
process.stdout.write(`${JSON.stringify({ acked, errors, elapsedSec })}\n`);
process.exit(0);
