/**
 * `npm run bench -- cluster` (issue 12, must show 4): etcd and three brokers
 * on this machine (LocalCluster, separate processes), topics with
 * replication factor 3 and minInsyncReplicas 2, every produce acks=all
 * (answered once the high watermark covers it: fdatasync'ed on the leader
 * and on every ISR follower). Load generators are separate processes over
 * the real WebSocket protocol.
 *   1. end-to-end latency p50/p99 at 10,000 records/s (10-record batches
 *      every ms; broker-bench-client.ts latency roles): producer → leader →
 *      acks=all → a consumer connected to ANOTHER broker (a follower, which
 *      serves only below the high watermark it learned) sees it; first, on a
 *      quiet cluster; the first second is warm-up; then the same through the
 *      SDK on both ends, as an app runs it (sdk-clients.ts `pace` — one
 *      promise per record, the SDK batching what accumulates — and one SDK
 *      subscriber from latest on the follower): that is the figure reported
 *      as latencyP50Ms/latencyP99Ms, the raw one beside it; then the SDK
 *      phase once more with the subscriber on the leader, Kafka's default
 *      (leaderLatencyP50Ms/leaderLatencyP99Ms);
 *   2. durable ingest of 100-byte records (cluster-bench-client.ts: batches
 *      of 1,000, several in flight per connection, each connection to its
 *      partition's leader), after an unmeasured warm-up;
 *   3. the same load on one `runnel start` broker (no cluster), same
 *      partitions, same disk, in the same run: the ratio cluster/single.
 * Per ingest phase it prints each broker's fdatasyncs/s and their mean time
 * (its /metrics), and per phase what the machine did (bench-processes.ts): cores used
 * per process and by OTHER processes, how long each process waited for a
 * core, disk MB/s and flushes, and the brokers' CPU-ms per MB. NB: on a
 * shared 2-core machine records/s follows the cores others take (measured:
 * 1.13 M records/s with others at 0.6 cores, 0.38 M at 1.2); CPU per MB is
 * the figure to compare between versions. Last line: `{"bench":"cluster",...}`.
 *
 * Knobs (env): BENCH_SECONDS (5), BENCH_WARMUP_SECONDS (2, ingest only),
 * BENCH_PARTITIONS (3: one leader per broker), BENCH_PRODUCERS (2
 * processes), BENCH_CONNECTIONS (per process per partition, 1),
 * BENCH_INFLIGHT (8 per connection), BENCH_RECORDS_PER_BATCH (1000),
 * BENCH_RATE (records/s in all, 0 = unpaced), BENCH_ONLY=latency,sdklatency,sdklatencyleader,ingest,single,
 * BENCH_CPU_PROF=<dir> (each broker writes a CPU profile of each ingest
 * phase, <dir>/<pid>-<n>.cpuprofile; cpu-profile.mjs),
 * BENCH_BROKER_NODE_OPTIONS (more node options for every broker, e.g.
 * --perf-basic-prof for `perf record -p <pids>`, which leaves
 * /tmp/perf-<pid>.map and isolate-*-v8.log in the working directory to
 * delete; or an --import of a tracing hook), BENCH_STALL_TRACE=1 (every
 * broker and client logs its GC pauses ≥ 1 ms and event-loop stalls ≥ 5 ms,
 * stall-trace.mjs; the SDK latency phase then prints how many episodes of
 * records later than BENCH_STALL_LATE_MS (6) a stall in some process could
 * explain), BENCH_BROKER_LOG=1 (print the
 * brokers' output; with RUNNEL_REPLICATION_TRACE=<ms> in the environment it
 * includes each broker's per-stage replication timings, docs/cluster.md
 * "Where the milliseconds go").
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { errorNameOf } from '@runnel/client/codec';
import { assertNativeUws } from '../../server/src/broker/uws.ts';
import { LocalCluster } from '../../server/src/cluster/local-cluster.ts';
import type { ClusterPartitionView } from '../../server/src/cluster/cluster-state.ts';
import {
  SingleNodeBroker, counterDelta, diskOf, formatUsage, machineUsage, readCounters, readResult, runPhase, sampleMachine, settle, spawnClient,
  type BrokerCounters, type BenchClient, type MachineUsage,
} from './bench-processes.ts';
import { episodesOf, parseTrace, summarizeEpisodes } from './stall-episodes.ts';

assertNativeUws();
const brokerClient = fileURLToPath(new URL('./broker-bench-client.ts', import.meta.url));
const clusterClient = fileURLToPath(new URL('./cluster-bench-client.ts', import.meta.url));
const sdkClient = fileURLToPath(new URL('./sdk-clients.ts', import.meta.url));

const env = (name: string, fallback: number): number => Number(process.env[name] ?? fallback);
const seconds = env('BENCH_SECONDS', 5);
/** Ingest runs this long before it is measured: JIT (TurboFan took ~15% of the brokers' CPU in their first seconds) and the first group commits. */
const warmUpSeconds = env('BENCH_WARMUP_SECONDS', 2);
const partitions = env('BENCH_PARTITIONS', 3);
const producerProcesses = env('BENCH_PRODUCERS', 2);
const connectionsPerPartition = env('BENCH_CONNECTIONS', 1);
const inflight = env('BENCH_INFLIGHT', 8);
const recordsPerBatch = env('BENCH_RECORDS_PER_BATCH', 1000);
/** > 0: ingest is paced to this many records/s in all (CPU per MB compared at equal load); 0: as fast as acks allow. */
const ingestRate = env('BENCH_RATE', 0);
const only = new Set((process.env.BENCH_ONLY ?? 'latency,sdklatency,sdklatencyleader,ingest,single').split(','));
/** End-to-end latency is measured at this many records/s (the issue's 10,000). */
const LATENCY_RATE = 10_000;
const BROKERS = 3;
const REPLICATION_FACTOR = 3;
const MIN_INSYNC_REPLICAS = 2;
const RECORD_BYTES = 100;
/** How long a new topic may take until every partition has a leader and a full ISR on the broker asked. */
const TOPIC_READY_TIMEOUT_MS = 60_000;

const cpuProfDir = process.env.BENCH_CPU_PROF;
/** NB: Node 20 refuses --cpu-prof in NODE_OPTIONS; cpu-profile.mjs starts the profiler through the inspector instead. */
const cpuProfileModule = fileURLToPath(new URL('./cpu-profile.mjs', import.meta.url));
/** BENCH_STALL_TRACE=1: every broker and client traces its GC pauses and event-loop stalls (stall-trace.mjs) into this file. */
const stallTraceFile = process.env.BENCH_STALL_TRACE === '1' ? join(tmpdir(), `runnel-stall-trace-${process.pid}.txt`) : undefined;
const stallTraceImport = stallTraceFile ? `--import=${fileURLToPath(new URL('./stall-trace.mjs', import.meta.url))}` : '';
if (stallTraceFile) {
  // NB: the clients inherit this process's environment (spawnClient).
  process.env.NODE_OPTIONS = `${process.env.NODE_OPTIONS ?? ''} ${stallTraceImport}`.trim();
  process.env.RUNNEL_STALL_TRACE_FILE = stallTraceFile;
}
const brokerNodeOptions = [process.env.NODE_OPTIONS ?? '', cpuProfDir ? `--import=${cpuProfileModule}` : '', process.env.BENCH_BROKER_NODE_OPTIONS ?? ''].join(' ').trim();
/** BENCH_BROKER_LIMITS="a=1,b=2" → `--limit a=1 --limit b=2` for every cluster broker. */
const brokerLimits = Object.fromEntries((process.env.BENCH_BROKER_LIMITS ?? '').split(',').filter(Boolean).map((kv) => {
  const [name, value] = kv.split('=');
  if (!name || value === undefined) throw new Error(`BENCH_BROKER_LIMITS: expected name=value, got ${kv}`);
  return [name, value];
}));
const brokerEnv: Record<string, string> = {
  NODE_OPTIONS: brokerNodeOptions, ...(cpuProfDir ? { RUNNEL_CPU_PROF_DIR: cpuProfDir } : {}), ...(stallTraceFile ? { RUNNEL_STALL_TRACE_FILE: stallTraceFile } : {}),
};
const onBrokerOutput = process.env.BENCH_BROKER_LOG ? (id: number, line: string) => console.log(`[node ${id}] ${line}`) : undefined;

interface IngestResult {
  recordsPerSec: number;
  mbPerSec: number;
  errors: Record<string, number>;
  /** Per broker over the phase: fdatasyncs/s and their mean duration. */
  fsync: { broker: string; perSec: number; meanMs: number }[];
  machine: MachineUsage;
  /** CPU the brokers spent per MB ingested (ms of one core): comparable across runs on a loaded machine, unlike records/s. */
  brokerCpuMsPerMB: number;
}

/** A broker to watch during a phase: /metrics at `url`, CPU of `pid`. */
interface Watched { name: string; url: string; pid: number | undefined }

/** With BENCH_CPU_PROF: starts (first call) or stops and writes (second call) each broker's profile of this phase. */
function toggleProfiles(brokers: Watched[]): void {
  if (!cpuProfDir) return;
  for (const b of brokers) if (b.pid !== undefined) process.kill(b.pid, 'SIGUSR2');
}

async function createTopic(baseUrl: string, name: string, count: number, replicationFactor: number): Promise<void> {
  const r = await fetch(`${baseUrl}/v1/topics`, {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ name, partitions: count, replicationFactor }),
  });
  if (r.status !== 201) throw new Error(`create topic ${name}: ${r.status} ${await r.text()}`);
}

/** Waits until every broker sees each partition of `topic` led, with the full ISR (the followers caught up). */
async function awaitTopicReady(cluster: LocalCluster, topic: string, count: number): Promise<ClusterPartitionView[]> {
  const deadline = Date.now() + TOPIC_READY_TIMEOUT_MS;
  let last = '';
  for (;;) {
    try {
      const views = await Promise.all(cluster.brokers.map((b) => b.clusterView(5_000, topic)));
      const ready = views.every((v) => {
        const ps = v.partitions.filter((p) => p.topic === topic);
        return ps.length === count && ps.every((p) => p.leader > 0 && p.isr.length === REPLICATION_FACTOR);
      });
      if (ready) return views[0].partitions.filter((p) => p.topic === topic).sort((a, b) => a.partition - b.partition);
      last = JSON.stringify(views.map((v) => v.partitions.map((p) => [p.partition, p.leader, p.isr])));
    } catch (error) {
      last = (error as Error).message;
    }
    if (Date.now() > deadline) throw new Error(`topic ${topic} not ready after ${TOPIC_READY_TIMEOUT_MS} ms: ${last}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * Ingest at full speed: `producerProcesses` processes, each with
 * `connectionsPerPartition` connections to every partition's leader.
 * `brokers` name the /metrics endpoints to read fdatasync counts from.
 */
async function ingest(topic: string, leaderWsUrl: (partition: number) => string, brokers: Watched[], others: Record<string, number | undefined> = {}): Promise<IngestResult> {
  const targets: string[] = [];
  for (let p = 0; p < partitions; p++) for (let c = 0; c < connectionsPerPartition; c++) targets.push(`${leaderWsUrl(p)}#${p}`);
  const producers = await Promise.all(Array.from({ length: producerProcesses }, () => spawnClient(clusterClient, ['produce', topic, recordsPerBatch, inflight, Math.round(ingestRate / producerProcesses), ...targets])));
  const watched = { ...Object.fromEntries(brokers.map((b) => [b.name, b.pid])), ...others, ...Object.fromEntries(producers.map((p, i) => [`producer ${i + 1}`, p.child.pid])) };
  let before: BrokerCounters[] = [];
  let machineBefore = sampleMachine(watched, disk);
  let beforeRead: Promise<void> = Promise.resolve();
  const results = await runPhase<{ acked: number; errors: Record<string, number>; elapsedSec: number }>(producers, seconds, warmUpSeconds, () => {
    machineBefore = sampleMachine(watched, disk);
    toggleProfiles(brokers);
    beforeRead = Promise.all(brokers.map((b) => readCounters(b.url))).then((c) => { before = c; });
  });
  toggleProfiles(brokers);
  await beforeRead;
  const machine = machineUsage(machineBefore, sampleMachine(watched, disk));
  const after = await Promise.all(brokers.map((b) => readCounters(b.url)));
  const acked = results.reduce((n, r) => n + r.acked, 0);
  const elapsed = Math.max(...results.map((r) => r.elapsedSec));
  const errors: Record<string, number> = {};
  for (const r of results) for (const [code, n] of Object.entries(r.errors)) errors[errorNameOf(Number(code))] = (errors[errorNameOf(Number(code))] ?? 0) + n;
  const fsync = brokers.map((b, i) => {
    const d: BrokerCounters = counterDelta(after[i], before[i]);
    return { broker: b.name, perSec: Math.round(d.fsyncs / elapsed), meanMs: d.fsyncs > 0 ? Number(((d.fsyncSeconds * 1000) / d.fsyncs).toFixed(2)) : 0 };
  });
  const mbPerSec = (acked * RECORD_BYTES) / elapsed / 1e6;
  const brokerCores = brokers.reduce((n, b) => n + (machine.processCores[b.name] ?? 0), 0);
  const brokerCpuMsPerMB = mbPerSec > 0 ? Number(((brokerCores * 1000) / mbPerSec).toFixed(2)) : 0;
  return { recordsPerSec: Math.round(acked / elapsed), mbPerSec: Math.round(mbPerSec), errors, fsync, machine, brokerCpuMsPerMB };
}

/** 10,000 records/s as 10-record batches to the leader of partition 0; the subscriber on another broker. */
interface LatencyResult { p50Ms: number; p99Ms: number; maxMs: number; records: number; machine: MachineUsage }
/** The SDK phase also counts the frames the subscriber received (records per frame = the batching) and the producer's failed sends. */
interface SdkLatencyResult extends LatencyResult { frames: number; producerErrors: number }

async function latency(produceWsUrl: string, consumeWsUrl: string, topic: string, watched: Record<string, number | undefined>): Promise<LatencyResult> {
  const sub = await spawnClient(brokerClient, ['latency-subscribe', consumeWsUrl, topic]);
  const producer = await spawnClient(brokerClient, ['latency-produce', produceWsUrl, topic, LATENCY_RATE, 10]);
  const clients: BenchClient[] = [sub, producer];
  const all = { ...watched, producer: producer.child.pid, consumer: sub.child.pid };
  const before = sampleMachine(all, disk);
  for (const c of clients) c.child.stdin!.write('start\n');
  await new Promise((r) => setTimeout(r, seconds * 1000));
  const machine = machineUsage(before, sampleMachine(all, disk));
  producer.child.stdin!.write('stop\n');
  await readResult(producer);
  await new Promise((r) => setTimeout(r, 200)); // the last batches reach the subscriber
  sub.child.stdin!.write('stop\n');
  return { ...(await readResult<Omit<LatencyResult, 'machine'>>(sub)), machine };
}

/**
 * The latency phase through the SDK: `pace` (one SDK producer, a promise per
 * record at LATENCY_RATE, sending what the rate owes every ms) to the leader,
 * one SDK subscriber from latest on a follower; send time in the value →
 * handler. One second of warm-up (JIT, credit windows) is not counted.
 */
async function sdkLatency(produceWsUrl: string, consumeWsUrl: string, topic: string, brokers: Watched[], others: Record<string, number | undefined>): Promise<SdkLatencyResult> {
  if (stallTraceFile) writeFileSync(stallTraceFile, ''); // this phase's stalls only
  const sub = await spawnClient(sdkClient, ['latency', consumeWsUrl, topic, 1]);
  const producer = await spawnClient(sdkClient, ['pace', produceWsUrl, topic, LATENCY_RATE]);
  const all = { ...Object.fromEntries(brokers.map((b) => [b.name, b.pid])), ...others, producer: producer.child.pid, consumer: sub.child.pid };
  let before = sampleMachine(all, disk);
  const [prod, lat] = await runPhase<Record<string, number | null>>([producer, sub], seconds, 1, () => {
    before = sampleMachine(all, disk);
    toggleProfiles(brokers);
  });
  toggleProfiles(brokers);
  const machine = machineUsage(before, sampleMachine(all, disk));
  for (const c of [producer, sub]) c.child.stdin!.end();
  if (lat.count === 0 || lat.p50Ms === null || lat.p99Ms === null || lat.maxMs === null) throw new Error(`SDK latency: the subscriber saw no record (producer ${JSON.stringify(prod)})`);
  if (stallTraceFile) {
    const { late, stalls } = parseTrace(readFileSync(stallTraceFile, 'utf8'));
    const names = new Map(Object.entries(all).map(([name, pid]) => [pid, name]));
    console.log(`  stall trace, records later than ${process.env.BENCH_STALL_LATE_MS ?? 6} ms: ${summarizeEpisodes(episodesOf(late, stalls), (pid) => names.get(pid) ?? `pid ${pid}`)} (${stallTraceFile})`);
  }
  return { p50Ms: lat.p50Ms, p99Ms: lat.p99Ms, maxMs: lat.maxMs, records: lat.count!, frames: lat.frames ?? 0, producerErrors: prod.errors ?? 0, machine };
}

function formatIngest(label: string, r: IngestResult): string {
  // NB: 0 = not reported (a broker whose partitions pass no onFlush on); the disk's flushes on the machine line count every fdatasync anyway.
  const fsync = r.fsync.map((f) => (f.perSec > 0 ? `${f.broker} ${f.perSec}/s × ${f.meanMs} ms` : `${f.broker} not reported`)).join(', ');
  return `${label}: ${r.recordsPerSec.toLocaleString()} records/s (${r.mbPerSec} MB/s; ${producerProcesses} processes × ${partitions * connectionsPerPartition} connections, ${recordsPerBatch}-record batches, ${inflight} in flight each); errors ${JSON.stringify(r.errors)}; fdatasync ${fsync}\n  ${formatUsage(r.machine)}; brokers ${r.brokerCpuMsPerMB} CPU-ms per MB`;
}

const rootDir = await mkdtemp(join(tmpdir(), 'runnel-bench-cluster-'));
const disk = diskOf(rootDir);
let lat: LatencyResult | null = null;
let sdkLat: SdkLatencyResult | null = null;
let sdkLeaderLat: SdkLatencyResult | null = null;
let clusterIngest: IngestResult | null = null;
let singleIngest: IngestResult | null = null;
try {
  if (only.has('latency') || only.has('sdklatency') || only.has('sdklatencyleader') || only.has('ingest')) {
    const startedMs = Date.now();
    const cluster = await LocalCluster.start({
      nodes: BROKERS, rootDir: join(rootDir, 'cluster'), minInsyncReplicas: MIN_INSYNC_REPLICAS, defaultReplicationFactor: REPLICATION_FACTOR,
      brokerLimits, env: brokerEnv, onOutput: onBrokerOutput,
    });
    console.log(`cluster: etcd + ${BROKERS} brokers formed in ${Date.now() - startedMs} ms (pids ${cluster.brokers.map((b) => `node ${b.id} ${b.pid}`).join(', ')})`);
    try {
      const byId = new Map(cluster.brokers.map((b) => [b.id, b]));
      /** A 1-partition topic of the latency phases, once every broker sees it led with the full ISR: its leader and a follower. */
      const latencyTopic = async (name: string) => {
        await createTopic(cluster.brokers[0].url, name, 1, REPLICATION_FACTOR);
        const [p0] = await awaitTopicReady(cluster, name, 1);
        return { leader: byId.get(p0.leader)!, other: cluster.brokers.find((b) => b.id !== p0.leader)! };
      };
      const watched: Watched[] = cluster.brokers.map((b) => ({ name: `node ${b.id}`, url: b.url, pid: b.pid }));
      if (only.has('latency')) {
        const { leader, other } = await latencyTopic('latency');
        lat = await latency(leader.wsUrl, other.wsUrl, 'latency', { ...Object.fromEntries(watched.map((b) => [b.name, b.pid])), etcd: cluster.etcd.pid });
        console.log(`end-to-end latency at 10,000 records/s (produce to node ${leader.id}, the leader; consume from node ${other.id}, a follower): p50 ${lat.p50Ms.toFixed(2)} ms, p99 ${lat.p99Ms.toFixed(2)} ms, max ${lat.maxMs.toFixed(2)} ms (${lat.records} records)\n  ${formatUsage(lat.machine)}`);
        await settle();
      }
      if (only.has('sdklatency')) {
        const { leader, other } = await latencyTopic('latency-sdk');
        sdkLat = await sdkLatency(leader.wsUrl, other.wsUrl, 'latency-sdk', watched, { etcd: cluster.etcd.pid });
        console.log(`end-to-end latency through the SDK at ${LATENCY_RATE.toLocaleString()} records/s (SDK producer, a promise per record, to node ${leader.id}, the leader; one SDK subscriber on node ${other.id}, a follower): p50 ${sdkLat.p50Ms.toFixed(2)} ms, p99 ${sdkLat.p99Ms.toFixed(2)} ms, max ${sdkLat.maxMs.toFixed(2)} ms (${sdkLat.records} records in ${sdkLat.frames} frames, ${sdkLat.producerErrors} producer errors)\n  ${formatUsage(sdkLat.machine)}`);
        await settle();
      }
      if (only.has('sdklatencyleader')) {
        // Kafka's default: the consumer fetches from the leader (follower fetching, KIP-392, is opt-in). One hop
        // fewer than the reported figure (no leader → follower high-watermark notice); reported beside it.
        const { leader } = await latencyTopic('latency-sdk-leader');
        sdkLeaderLat = await sdkLatency(leader.wsUrl, leader.wsUrl, 'latency-sdk-leader', watched, { etcd: cluster.etcd.pid });
        console.log(`end-to-end latency through the SDK, subscriber on the leader (node ${leader.id}, with the producer): p50 ${sdkLeaderLat.p50Ms.toFixed(2)} ms, p99 ${sdkLeaderLat.p99Ms.toFixed(2)} ms, max ${sdkLeaderLat.maxMs.toFixed(2)} ms (${sdkLeaderLat.records} records in ${sdkLeaderLat.frames} frames)\n  ${formatUsage(sdkLeaderLat.machine)}`);
        await settle();
      }
      if (only.has('ingest')) {
        await createTopic(cluster.brokers[0].url, 'ingest', partitions, REPLICATION_FACTOR);
        const views = await awaitTopicReady(cluster, 'ingest', partitions);
        console.log(`ingest topic: ${views.map((p) => `p${p.partition} leader ${p.leader} isr [${p.isr.join(',')}]`).join('; ')}`);
        clusterIngest = await ingest('ingest', (p) => byId.get(views[p].leader)!.wsUrl, watched, { etcd: cluster.etcd.pid });
        console.log(formatIngest(`cluster durable ingest (RF ${REPLICATION_FACTOR}, acks=all, minISR ${MIN_INSYNC_REPLICAS})`, clusterIngest));
      }
    } finally {
      await cluster.stop();
    }
    await settle();
  }
  if (only.has('single')) {
    const single = await SingleNodeBroker.start({ dataDir: join(rootDir, 'single'), env: brokerEnv });
    console.log(`single node: runnel start (no cluster) ready (pid ${single.pid})`);
    try {
      await createTopic(single.url, 'ingest', partitions, 1);
      singleIngest = await ingest('ingest', () => single.wsUrl, [{ name: 'single', url: single.url, pid: single.pid }]);
      console.log(formatIngest('single-node durable ingest (RF 1, acks=all)', singleIngest));
    } finally {
      await single.stop();
    }
  }
  const ratio = clusterIngest && singleIngest ? Number((clusterIngest.recordsPerSec / singleIngest.recordsPerSec).toFixed(3)) : null;
  if (ratio !== null) console.log(`ratio cluster/single: ${ratio}`);
  console.log(JSON.stringify({
    bench: 'cluster', brokers: BROKERS, replicationFactor: REPLICATION_FACTOR, minInsyncReplicas: MIN_INSYNC_REPLICAS, partitions,
    ingestRecordsPerSec: clusterIngest?.recordsPerSec ?? null, singleNodeIngestRecordsPerSec: singleIngest?.recordsPerSec ?? null, ratio,
    clusterCpuMsPerMB: clusterIngest?.brokerCpuMsPerMB ?? null, singleNodeCpuMsPerMB: singleIngest?.brokerCpuMsPerMB ?? null,
    otherProcessesCores: clusterIngest?.machine.otherCores ?? null,
    latencyP50Ms: sdkLat ? Number(sdkLat.p50Ms.toFixed(3)) : null, latencyP99Ms: sdkLat ? Number(sdkLat.p99Ms.toFixed(3)) : null,
    leaderLatencyP50Ms: sdkLeaderLat ? Number(sdkLeaderLat.p50Ms.toFixed(3)) : null, leaderLatencyP99Ms: sdkLeaderLat ? Number(sdkLeaderLat.p99Ms.toFixed(3)) : null,
    rawLatencyP50Ms: lat ? Number(lat.p50Ms.toFixed(3)) : null, rawLatencyP99Ms: lat ? Number(lat.p99Ms.toFixed(3)) : null, latencyRecordsPerSec: LATENCY_RATE, recordBytes: RECORD_BYTES,
  }));
} finally {
  await rm(rootDir, { recursive: true, force: true });
}
process.exit(0);
