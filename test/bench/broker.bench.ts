/**
 * `npm run bench -- broker`: end to end over real WebSockets, broker in
 * this process, clients in separate processes (broker-bench-client.ts).
 *   1. end-to-end latency p50/p99 at a fixed 10,000 records/s (10-record
 *      batches every ms), produce → durable append → publish → subscriber;
 *      first, on a quiet broker; the first second is warm-up and not counted;
 *   2. durable ingest: 100-byte records in batches of 1,000, several
 *      producer connections pipelining produce frames (acks after fdatasync);
 *   3. fan-out deliveries/s to 1,000 and 10,000 live subscribers (subscriber
 *      processes hold many connections; records counted from batch headers).
 * Last line: `{"bench":"broker",...}`. All on the same 2 cores.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { assertNativeUws } from '../../server/src/broker/uws.ts';
import { validateLimits } from '../../server/src/limits.ts';
import { startServer, type RunningServer } from '../../server/src/server.ts';

assertNativeUws();
const clientScript = fileURLToPath(new URL('./broker-bench-client.ts', import.meta.url));
const seconds = Number(process.env.BENCH_SECONDS ?? 5);

interface Client { child: ChildProcess; lines: AsyncIterator<string> }

async function spawnClient(args: (string | number)[]): Promise<Client> {
  const child = spawn(process.execPath, ['--import', 'tsx', clientScript, ...args.map(String)], { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
  const first = await lines.next();
  if (first.done || !(JSON.parse(first.value) as { ready?: boolean }).ready) throw new Error(`client ${args[0]} did not get ready`);
  return { child, lines };
}

/**
 * Phases are measured apart: write back the previous phase's log data, then
 * drop the page cache (best effort; needs root, as on CI). On this Firecracker
 * VM, guest memory never touched before is slow to hand out; with the 2.4 GB
 * that ingest leaves in the page cache, the 10k fan-out's socket buffers land
 * on such memory and measured 7.0 M deliveries/s, against 14–19 M with the
 * cache dropped or the phase run alone (BENCH_ONLY=fanout10k).
 */
async function settle(): Promise<void> {
  execFileSync('sync');
  try {
    writeFileSync('/proc/sys/vm/drop_caches', '3');
  } catch {
    console.log('bench: could not drop the page cache (not root); phases after ingest may measure lower');
  }
  await new Promise((r) => setTimeout(r, 1000));
}

async function runPhase<T>(clients: Client[], durationSec: number): Promise<T[]> {
  for (const c of clients) c.child.stdin!.write('start\n');
  await new Promise((r) => setTimeout(r, durationSec * 1000));
  for (const c of clients) c.child.stdin!.write('stop\n');
  return Promise.all(clients.map(async (c) => {
    const line = await c.lines.next();
    return JSON.parse(line.value as string) as T;
  }));
}

async function ingest(server: RunningServer, wsUrl: string): Promise<{ recordsPerSec: number; mbPerSec: number; errors: number }> {
  await server.broker.createTopic({ name: 'ingest', partitions: 4, replicationFactor: 1 });
  const producers = await Promise.all([0, 1].map(() => spawnClient(['produce', wsUrl, 'ingest', 4, 4, 1000, 8])));
  const results = await runPhase<{ acked: number; errors: number; elapsedSec: number }>(producers, seconds);
  const acked = results.reduce((n, r) => n + r.acked, 0);
  const elapsed = Math.max(...results.map((r) => r.elapsedSec));
  return { recordsPerSec: Math.round(acked / elapsed), mbPerSec: Math.round((acked * 100) / elapsed / 1e6), errors: results.reduce((n, r) => n + r.errors, 0) };
}

/** `maxRecordsPerSec` 0 = produce as fast as acks allow (subscribers fall behind into catch-up); > 0 = paced. */
async function fanout(server: RunningServer, wsUrl: string, subscribers: number, maxRecordsPerSec = 0): Promise<{ deliveriesPerSec: number; producedPerSec: number }> {
  const topic = `fanout-${subscribers}-${maxRecordsPerSec}`;
  await server.broker.createTopic({ name: topic, partitions: 1, replicationFactor: 1 });
  const processes = subscribers >= 10_000 ? 4 : 2;
  const subs = await Promise.all(Array.from({ length: processes }, () => spawnClient(['subscribe', wsUrl, topic, subscribers / processes])));
  const producer = await spawnClient(['produce', wsUrl, topic, 1, 1, 1000, maxRecordsPerSec > 0 ? 2 : 4, maxRecordsPerSec]);
  const [produced, ...received] = await runPhase<{ acked?: number; records?: number; elapsedSec: number }>([producer, ...subs], seconds);
  const deliveries = received.reduce((n, r) => n + (r.records ?? 0), 0);
  const elapsed = Math.max(...received.map((r) => r.elapsedSec));
  return { deliveriesPerSec: Math.round(deliveries / elapsed), producedPerSec: Math.round((produced.acked ?? 0) / produced.elapsedSec) };
}

async function latency(server: RunningServer, wsUrl: string): Promise<{ p50Ms: number; p99Ms: number; maxMs: number; records: number }> {
  await server.broker.createTopic({ name: 'latency', partitions: 1, replicationFactor: 1 });
  const sub = await spawnClient(['latency-subscribe', wsUrl, 'latency']);
  const producer = await spawnClient(['latency-produce', wsUrl, 'latency', 10_000, 10]);
  for (const c of [sub, producer]) c.child.stdin!.write('start\n');
  await new Promise((r) => setTimeout(r, seconds * 1000));
  producer.child.stdin!.write('stop\n');
  await producer.lines.next();
  await new Promise((r) => setTimeout(r, 200));
  sub.child.stdin!.write('stop\n');
  const line = await sub.lines.next();
  return JSON.parse(line.value as string) as { p50Ms: number; p99Ms: number; maxMs: number; records: number };
}

const dataDir = await mkdtemp(join(tmpdir(), 'runnel-bench-broker-'));
const server = await startServer({
  brokerId: 0, dataDir, host: '127.0.0.1', port: 0, autoCreateTopics: false, defaultPartitions: 1, flushIntervalMs: 0,
  limits: validateLimits({ maxConnections: 20_000 }),
}, { log: (l) => console.log(l) });
const wsUrl = `ws://127.0.0.1:${server.port}/v1/ws`;
try {
  // BENCH_ONLY=ingest,fanout1k,fanout10k,latency runs a subset (figures of skipped phases are null).
  const only = new Set((process.env.BENCH_ONLY ?? 'ingest,fanout1k,fanout10k,fanout10kPaced,latency').split(','));
  // Latency first, on a quiet broker: after the ingest phase the kernel is still writing back
  // ~1.4 GB of dirty pages, which stretches fdatasync and put p99 at ~30 ms instead of ~5–7 ms.
  const lat = only.has('latency') ? await latency(server, wsUrl) : null;
  if (lat) console.log(`end-to-end latency at 10,000 records/s: p50 ${lat.p50Ms.toFixed(2)} ms, p99 ${lat.p99Ms.toFixed(2)} ms, max ${lat.maxMs.toFixed(2)} ms (${lat.records} records)`);
  await settle();
  const ingestResult = only.has('ingest') ? await ingest(server, wsUrl) : null;
  if (ingestResult) console.log(`durable ingest: ${ingestResult.recordsPerSec.toLocaleString()} records/s (${ingestResult.mbPerSec} MB/s, 8 connections in 2 processes, 1,000-record batches), errors ${ingestResult.errors}`);
  await settle();
  const f1k = only.has('fanout1k') ? await fanout(server, wsUrl, 1000) : null;
  if (f1k) console.log(`fan-out to 1,000 subscribers: ${f1k.deliveriesPerSec.toLocaleString()} deliveries/s (produced ${f1k.producedPerSec.toLocaleString()} records/s)`);
  await settle();
  const f10k = only.has('fanout10k') ? await fanout(server, wsUrl, 10_000) : null;
  if (f10k) console.log(`fan-out to 10,000 subscribers: ${f10k.deliveriesPerSec.toLocaleString()} deliveries/s (produced ${f10k.producedPerSec.toLocaleString()} records/s)`);
  const pacedRate = Number(process.env.FANOUT10K_RATE ?? 1000);
  await settle();
  const f10kPaced = only.has('fanout10kPaced') ? await fanout(server, wsUrl, 10_000, pacedRate) : null;
  if (f10kPaced) console.log(`fan-out to 10,000 subscribers, producer paced at ${pacedRate.toLocaleString()} records/s: ${f10kPaced.deliveriesPerSec.toLocaleString()} deliveries/s (produced ${f10kPaced.producedPerSec.toLocaleString()} records/s)`);
  console.log(JSON.stringify({
    bench: 'broker',
    ingestRecordsPerSec: ingestResult?.recordsPerSec ?? null,
    fanout1kDeliveriesPerSec: f1k?.deliveriesPerSec ?? null,
    fanout10kDeliveriesPerSec: f10k?.deliveriesPerSec ?? null,
    fanout10kPacedDeliveriesPerSec: f10kPaced?.deliveriesPerSec ?? null,
    latencyP50Ms: lat ? Number(lat.p50Ms.toFixed(3)) : null,
    latencyP99Ms: lat ? Number(lat.p99Ms.toFixed(3)) : null,
  }));
} finally {
  await server.close();
  await rm(dataDir, { recursive: true, force: true });
}
process.exit(0);
