/**
 * `npm run bench -- sdk`: the SDK on both ends, each in its own process
 * (sdk-clients.ts), against a durable single-node broker child (`runnel
 * start`, acks after fdatasync), one partition, 100 B JSON values:
 *   1. producer: one producer, one promise per record, BENCH_SDK_INFLIGHT
 *      (1,024) records in flight: acknowledged records/s;
 *   2. consumers: BENCH_SDK_CONSUMERS (1,000) SDK consumers in one process,
 *      one connection each, reading the phase-1 log from earliest through
 *      the per-record handler and reading every record's `value`; then as
 *      many bare-protocol subscribers (raw-ws-reader.ts, records counted
 *      from batch headers) in one process over the same log: the broker's
 *      ceiling, for the ratio;
 *   3. latency: a producer paced at BENCH_SDK_LATENCY_RATE (5,000) records/s
 *      to BENCH_SDK_LATENCY_SUBSCRIBERS (100) SDK subscribers in one
 *      process, send time (in the value) to handler; then the same load to
 *      as many bare-protocol subscribers (batch timestamp to arrival, whole
 *      ms: compared with the SDK's figure on that same measure).
 * Knobs: BENCH_SECONDS (measured seconds per phase, default 5),
 * BENCH_WARMUP_SECONDS (default 1), BENCH_ONLY=producer,consumers,latency,
 * BENCH_SDK_CPU_PROF=<dir> (CPU profiles of the client processes' measured part), BENCH_SDK_HEAP_PROF=<dir>
 * (sampled heap profiles, collected objects included). The clients run the compiled SDK (client-sdk/dist,
 * built by run.ts) as a Node app does; BENCH_SDK_TS=1 runs this checkout's sources through tsx and
 * BENCH_SDK_SRC=<dir> another copy's (for a before/after, against BENCH_SDK_TS=1). BENCH_SDK_PACE_MS (the paced producer's
 * send interval, default 1 ms), BENCH_BROKER_ARGS (more `runnel start` flags, e.g. `--limit catchUpReadBytes=131072`).
 * Last line: `{"bench":"sdk",...}`. All processes share the machine's cores.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { assertNativeUws } from '../../server/src/broker/uws.ts';
import { SingleNodeBroker, counterDelta, readCounters, type BrokerCounters, formatUsage, machineUsage, runPhase, sampleMachine, settle, spawnClient, type BenchClient, type MachineUsage } from './bench-processes.ts';

assertNativeUws();
const clientScript = fileURLToPath(new URL('./sdk-clients.ts', import.meta.url));
const env = (name: string, fallback: number): number => Number(process.env[name] ?? fallback);
const seconds = env('BENCH_SECONDS', 5);
const warmUpSec = env('BENCH_WARMUP_SECONDS', 1);
// The clients measure their window from these (sdk-clients.ts Meter), not from when they read `mark` and `stop`.
process.env.BENCH_SECONDS = String(seconds);
process.env.BENCH_WARMUP_SECONDS = String(warmUpSec);
const inflight = env('BENCH_SDK_INFLIGHT', 1024);
const consumers = env('BENCH_SDK_CONSUMERS', 1000);
const latencyRate = env('BENCH_SDK_LATENCY_RATE', 5000);
const latencySubscribers = env('BENCH_SDK_LATENCY_SUBSCRIBERS', 100);
const only = new Set((process.env.BENCH_ONLY ?? 'producer,consumers,latency').split(','));

async function createTopic(baseUrl: string, name: string): Promise<void> {
  const r = await fetch(`${baseUrl}/v1/topics`, {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ name, partitions: 1, replicationFactor: 1 }),
  });
  if (r.status !== 201) throw new Error(`create topic ${name}: ${r.status} ${await r.text()}`);
}

interface Counted { count: number; elapsedSec: number; errors?: number; cpuUsPerCount?: number | null }

/** Runs one phase of `clients`, sampling the machine (cores of the broker and of each client process). */
async function measure<T>(broker: SingleNodeBroker, clients: BenchClient[], names: string[]): Promise<{ results: T[]; usage: MachineUsage | null }> {
  const pids: Record<string, number | undefined> = { broker: broker.pid };
  clients.forEach((c, i) => { pids[names[i]] = c.child.pid; });
  let before: ReturnType<typeof sampleMachine> | null = null;
  const results = await runPhase<T>(clients, seconds, warmUpSec, () => { before = sampleMachine(pids, null); });
  const usage = before ? machineUsage(before, sampleMachine(pids, null)) : null;
  for (const c of clients) c.child.stdin!.write('quit\n');
  return { results, usage };
}

const perSec = (r: Counted): number => Math.round(r.count / r.elapsedSec);

const rootDir = await mkdtemp(join(tmpdir(), 'runnel-bench-sdk-'));
const broker = await SingleNodeBroker.start({ dataDir: join(rootDir, 'data'), args: (process.env.BENCH_BROKER_ARGS ?? '').split(' ').filter(Boolean) });
console.log(`durable single-node broker ready (pid ${broker.pid}); ${seconds} s per phase after ${warmUpSec} s warm-up`);
let producerAckedPerSec: number | null = null, consumersDeliveriesPerSec: number | null = null, rawDeliveriesPerSec: number | null = null;
let latencyP50Ms: number | null = null, latencyP99Ms: number | null = null;
/** The same load to bare-protocol subscribers, and the SDK's on the same measure (record timestamp, whole ms, to arrival). */
let rawLatencyP50Ms: number | null = null, rawLatencyP99Ms: number | null = null, sdkTimestampLatencyP50Ms: number | null = null, sdkTimestampLatencyP99Ms: number | null = null;
/** CPU per acknowledged record in the producer process (µs of one core, process.cpuUsage): comparable across runs on a loaded machine, unlike records/s. */
let producerCpuUsPerRecord: number | null = null;
/** CPU per delivery in the consumer process (µs of one core, process.cpuUsage), SDK and raw. */
let consumersCpuUsPerDelivery: number | null = null, rawCpuUsPerDelivery: number | null = null;
/** The same SDK consumers with a handler that reads only `offset` (no value decoded). */
let offsetOnlyDeliveriesPerSec: number | null = null, offsetOnlyCpuUsPerDelivery: number | null = null;

try {
  await createTopic(broker.url, 'sdk');
  if (only.has('producer') || only.has('consumers')) {
    const producer = await spawnClient(clientScript, ['produce', broker.wsUrl, 'sdk', inflight]);
    const before = readCounters(broker.url);
    const { results: [r], usage } = await measure<Counted>(broker, [producer], ['producer']);
    const counters = counterDelta(await readCounters(broker.url), await before);
    producerAckedPerSec = perSec(r);
    producerCpuUsPerRecord = r.cpuUsPerCount ?? null;
    // NB: the counters span the warm-up too (for the batch size); the broker's CPU per record is over the measured part.
    const brokerUsPerRecord = usage && r.count > 0 ? ((usage.processCores.broker ?? 0) * r.elapsedSec * 1e6 / r.count).toFixed(2) : 'n/a';
    console.log(`producer, one promise per record, ${inflight} in flight: ${producerAckedPerSec.toLocaleString()} acked records/s (errors ${r.errors}), ${producerCpuUsPerRecord} µs of producer CPU per record; `
      + `${counters.produceRequests} produce requests, ${counters.produceRequests > 0 ? (counters.recordsIn / counters.produceRequests).toFixed(0) : 'n/a'} records per batch, ${counters.fsyncs} fsyncs, ~${brokerUsPerRecord} µs of broker CPU per record${usage ? `; ${formatUsage(usage)}` : ''}`);
  }
  if (only.has('consumers')) {
    await settle();
    const sdk = await spawnClient(clientScript, ['consume', broker.wsUrl, 'sdk', consumers]);
    const { results: [c], usage } = await measure<Counted>(broker, [sdk], ['consumers']);
    consumersDeliveriesPerSec = perSec(c);
    consumersCpuUsPerDelivery = c.cpuUsPerCount ?? null;
    console.log(`${consumers} SDK consumers (per-record handler reading value): ${consumersDeliveriesPerSec.toLocaleString()} deliveries/s, ${consumersCpuUsPerDelivery} µs of CPU per delivery${usage ? `; ${formatUsage(usage)}` : ''}`);
    await settle();
    const sdkOffset = await spawnClient(clientScript, ['consumeoffset', broker.wsUrl, 'sdk', consumers]);
    const { results: [o], usage: offsetUsage } = await measure<Counted>(broker, [sdkOffset], ['consumers']);
    offsetOnlyDeliveriesPerSec = perSec(o);
    offsetOnlyCpuUsPerDelivery = o.cpuUsPerCount ?? null;
    console.log(`${consumers} SDK consumers (per-record handler reading only offset): ${offsetOnlyDeliveriesPerSec.toLocaleString()} deliveries/s, ${offsetOnlyCpuUsPerDelivery} µs of CPU per delivery${offsetUsage ? `; ${formatUsage(offsetUsage)}` : ''}`);
    await settle();
    const raw = await spawnClient(clientScript, ['raw', broker.wsUrl, 'sdk', consumers]);
    const { results: [rr], usage: rawUsage } = await measure<Counted>(broker, [raw], ['raw']);
    rawDeliveriesPerSec = perSec(rr);
    rawCpuUsPerDelivery = rr.cpuUsPerCount ?? null;
    console.log(`${consumers} bare-protocol subscribers: ${rawDeliveriesPerSec.toLocaleString()} deliveries/s, ${rawCpuUsPerDelivery} µs of CPU per delivery${rawUsage ? `; ${formatUsage(rawUsage)}` : ''}`);
    console.log(`SDK consumers / raw: ${(consumersDeliveriesPerSec / rawDeliveriesPerSec * 100).toFixed(1)} %`);
  }
  if (only.has('latency')) {
    // The same paced load twice: to SDK subscribers, then to as many bare-protocol subscribers (the broker's and
    // the wire's share of the latency, without the SDK). Each on its own topic, so neither sees the other's backlog.
    type Latency = Counted & { p50Ms: number | null; p99Ms: number | null; maxMs: number | null; timestampP50Ms: number | null; timestampP99Ms: number | null; frames: number; cpuUsPerDelivery: number | null; cpuUsPerFrame: number | null };
    const runLatency = async (role: 'latency' | 'rawlatency', topic: string): Promise<Latency> => {
      await settle();
      await createTopic(broker.url, topic);
      const subs = await spawnClient(clientScript, [role, broker.wsUrl, topic, latencySubscribers]);
      const producer = await spawnClient(clientScript, ['pace', broker.wsUrl, topic, latencyRate]);
      let countersBefore: Promise<BrokerCounters> | null = null;
      const pids: Record<string, number | undefined> = { broker: broker.pid, producer: producer.child.pid, subscribers: subs.child.pid };
      let before: ReturnType<typeof sampleMachine> | null = null;
      const [, lat] = await runPhase<Latency>([producer, subs], seconds, warmUpSec, () => { before = sampleMachine(pids, null); countersBefore = readCounters(broker.url); });
      const usage = before ? machineUsage(before, sampleMachine(pids, null)) : null;
      const counters = counterDelta(await readCounters(broker.url), await countersBefore!);
      for (const c of [producer, subs]) c.child.stdin!.write('quit\n');
      const who = role === 'latency' ? 'SDK' : 'bare-protocol';
      const recordsPerBatch = counters.produceRequests > 0 ? (counters.recordsIn / counters.produceRequests).toFixed(1) : 'n/a';
      console.log(`latency at ${latencyRate.toLocaleString()} records/s to ${latencySubscribers} ${who} subscribers: p50 ${lat.p50Ms} ms, p99 ${lat.p99Ms} ms, max ${lat.maxMs} ms; `
        + `from the record timestamp (whole ms) p50 ${lat.timestampP50Ms} / p99 ${lat.timestampP99Ms} ms (${lat.count} deliveries, ${lat.frames} frames; subscriber CPU ${lat.cpuUsPerDelivery} µs per delivery, ${lat.cpuUsPerFrame} µs per frame); `
        + `${counters.produceRequests} produce requests, ${recordsPerBatch} records per batch, ${counters.fsyncs} fsyncs${usage ? `; ${formatUsage(usage)}` : ''}`);
      return lat;
    };
    const lat = await runLatency('latency', 'sdk-latency');
    // NB: no delivery in the measured part (a starved machine) prints null figures (JSON has no NaN).
    latencyP50Ms = lat.p50Ms;
    latencyP99Ms = lat.p99Ms;
    const raw = await runLatency('rawlatency', 'sdk-latency-raw');
    rawLatencyP50Ms = raw.timestampP50Ms;
    rawLatencyP99Ms = raw.timestampP99Ms;
    sdkTimestampLatencyP50Ms = lat.timestampP50Ms;
    sdkTimestampLatencyP99Ms = lat.timestampP99Ms;
  }
  console.log(JSON.stringify({
    bench: 'sdk', producerAckedPerSec, producerCpuUsPerRecord, consumersDeliveriesPerSec, rawDeliveriesPerSec,
    consumersOfRaw: consumersDeliveriesPerSec && rawDeliveriesPerSec ? Number((consumersDeliveriesPerSec / rawDeliveriesPerSec).toFixed(3)) : null,
    consumersCpuUsPerDelivery, rawCpuUsPerDelivery, offsetOnlyDeliveriesPerSec, offsetOnlyCpuUsPerDelivery, latencyP50Ms, latencyP99Ms,
    sdkTimestampLatencyP50Ms, sdkTimestampLatencyP99Ms, rawLatencyP50Ms, rawLatencyP99Ms, inflight, consumers, latencyRate, latencySubscribers, valueBytes: 100, seconds,
  }));
} finally {
  await broker.stop();
  await rm(rootDir, { recursive: true, force: true });
}
process.exit(0);
