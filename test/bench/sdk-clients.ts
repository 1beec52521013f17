/**
 * Client process for `sdk.bench.ts` (not a benchmark itself): the SDK as an
 * app uses it, in Node with `ws`. Roles:
 *   produce <wsUrl> <topic> <inflight>             one producer, one promise per record, `inflight` outstanding
 *   pace <wsUrl> <topic> <recordsPerSec>           one producer at a fixed rate; each value carries its send time
 *   consume <wsUrl> <topic> <clients>              `clients` SDK consumers (one connection each) from earliest,
 *                                                  per-record handler reading every record's `value`
 *   consumeoffset <wsUrl> <topic> <clients>        the same with a handler that reads only `offset`: the SDK's
 *                                                  own cost per record, without the value's UTF-8 + JSON.parse
 *   latency <wsUrl> <topic> <clients>              `clients` SDK consumers from latest: send time → handler
 *   rawlatency <wsUrl> <topic> <connections>       bare-protocol subscribers from latest: batch max timestamp → arrival
 *   raw <wsUrl> <topic> <connections>              bare-protocol subscribers from earliest (raw-ws-reader.ts),
 *                                                  counting records from batch headers: the broker's ceiling
 * Protocol with the parent (bench-processes.ts): prints `{"ready":true}` once
 * connected; reads `start`, `mark` (restart the counts after warm-up) and
 * `stop` on stdin; prints one JSON result line on stop, and exits on `quit`. Values are 100 B of
 * JSON (`{"t":<ms>,"p":"xxx…"}`), as a typical small event.
 */
import { appendFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { WebSocket } from 'ws';
import type { ConsumerRecord, RunnelConsumer, WebSocketConstructor } from '@runnel/client';
import { startProfiles } from './inspector-profiles.ts';
import { openRawSubscriber, type RawSubscriber } from './raw-subscriber.ts';

/**
 * The SDK as a Node app runs it: the compiled package (client-sdk/dist, which `npm run bench` builds first), not
 * the TypeScript sources through tsx, whose transform keeps function names by wrapping every function created at
 * run time (`__name`, an Object.defineProperty each: 7–11 % of the latency subscribers' profile, 8 Dec).
 * BENCH_SDK_TS=1: this checkout's sources through tsx. BENCH_SDK_SRC=<dir>: another copy of client-sdk/src
 * (e.g. `git archive` of an older commit) through tsx, for a before/after on the same broker and load (compare
 * it with BENCH_SDK_TS=1). Only the public API is used.
 */
const sdkSrc = process.env.BENCH_SDK_SRC ?? (process.env.BENCH_SDK_TS ? fileURLToPath(new URL('../../client-sdk/src', import.meta.url)) : null);
const sdkDist = fileURLToPath(new URL('../../client-sdk/dist', import.meta.url));
const { createConsumer, createProducer } = await import(sdkSrc ? `${sdkSrc}/index.ts` : `${sdkDist}/index.js`) as typeof import('@runnel/client');
const { memoryStorage } = await import(sdkSrc ? `${sdkSrc}/memory-storage.ts` : `${sdkDist}/memory-storage.js`) as typeof import('@runnel/client/memory');

const [role, wsUrl, topic, arg] = process.argv.slice(2);
const n = Number(arg);
const WS = WebSocket as unknown as WebSocketConstructor;
/** Value bytes of every record (JSON text). */
export const VALUE_BYTES = 100;
/** The paced producer sends what the rate owes every this many ms (BENCH_SDK_PACE_MS, default 1). */
const PACE_MS = Number(process.env.BENCH_SDK_PACE_MS ?? 1);

let phase: 'ready' | 'running' | 'stopped' = 'ready';
let onMark = (): void => {};
let startResolve: () => void = () => {};
let stopResolve: () => void = () => {};
const started = new Promise<void>((r) => { startResolve = r; });
const stopped = new Promise<void>((r) => { stopResolve = r; });
/** After its result line a client stays (its CPU ticks stay readable for the parent's sample) until `quit` or stdin ends. */
const exitOnQuit = new Promise<never>(() => {
  process.stdin.once('end', () => process.exit(0));
});
createInterface({ input: process.stdin }).on('line', (line) => {
  if (line === 'start') { phase = 'running'; startResolve(); }
  if (line === 'mark') onMark();
  if (line === 'stop') { phase = 'stopped'; stopResolve(); }
  if (line === 'quit') process.exit(0);
});

/**
 * Profiles of the measured part (`mark` to the result line): BENCH_SDK_CPU_PROF=<dir> a CPU profile,
 * BENCH_SDK_HEAP_PROF=<dir> a sampled heap profile of everything allocated, collected or not;
 * `<dir>/sdk-<role>-<pid>.cpuprofile` / `.heapprofile`.
 */
const cpuProfDir = process.env.BENCH_SDK_CPU_PROF, heapProfDir = process.env.BENCH_SDK_HEAP_PROF;
let stopProfiles: (() => void) | null = null;
createInterface({ input: process.stdin }).on('line', (line) => {
  if (line !== 'mark' || !(cpuProfDir || heapProfDir)) return;
  const file = (dir: string | undefined, ext: string): string | undefined => dir && join(dir, `sdk-${role}-${process.pid}.${ext}`);
  stopProfiles = startProfiles({ cpu: file(cpuProfDir, 'cpuprofile'), heap: file(heapProfDir, 'heapprofile') });
});

function emit(o: object): void {
  // NB: the profiles are written before the result line (startProfiles).
  if (!('ready' in o)) stopProfiles?.();
  process.stdout.write(`${JSON.stringify(o)}\n`);
}

/**
 * Milliseconds on the clock processes of one machine share (Date.now()), to sub-millisecond: performance.now()
 * plus its offset to Date.now(). NB: not performance.timeOrigin, which measured up to 18 ms apart between two
 * Node 20 processes here. Date.now() is the true time floored, so `Date.now() - performance.now()` never exceeds
 * the offset and reaches it just after a millisecond tick; a preemption between the two reads only lowers it.
 * The largest of 30 ms of samples is the offset within a few µs, however loaded the machine (taking the first
 * tick alone was off by whole milliseconds when the process lost its core between the reads).
 */
const clockOffsetMs = ((): number => {
  let best = -Infinity;
  for (const end = performance.now() + 30; performance.now() < end;) best = Math.max(best, Date.now() - performance.now());
  return best;
})();
const wallMs = (): number => performance.now() + clockOffsetMs;

/** A 100-byte JSON value `{"t":<ms>,"p":"…"}` (the padding makes up the length). */
function valueAt(t: number): { t: number; p: string } {
  const head = JSON.stringify({ t, p: '' }).length;
  return { t, p: 'x'.repeat(Math.max(0, VALUE_BYTES - head)) };
}

/**
 * The measured window, from the phase's own timing (sdk.bench.ts passes BENCH_WARMUP_SECONDS and BENCH_SECONDS to
 * every client): it starts warm-up seconds after `start` is read and lasts the phase's seconds. NB: not from when
 * `mark` and `stop` are read: a process flooded with frames (1,000 consumers catching up) can leave its event loop
 * busy for seconds, read both lines together and report nothing.
 */
const WARM_UP_MS = Number(process.env.BENCH_WARMUP_SECONDS ?? 0) * 1000;
const MEASURED_MS = Number(process.env.BENCH_SECONDS ?? 5) * 1000;
/** Deliveries between two looks at the clock in the counting path. */
const SAMPLE_EVERY = 1024;
/**
 * At most one sample (with its process.cpuUsage) per this many ms: a sample per 1,024 deliveries was 7.7 % of the
 * 1,000-consumer process's profile at ~1 M deliveries/s (8 Dec), the bench measuring itself.
 */
const SAMPLE_MIN_MS = 5;

/**
 * Counts (`add`) with samples of (time, count, CPU) taken in the counting path every SAMPLE_EVERY counts, so the
 * count and CPU at the window's edges are known however late this process reads `mark` and `stop` (linear
 * between the samples around an edge). Result: counts inside the window, its seconds, CPU µs per count.
 */
class Meter {
  #count = 0;
  #nextSample = SAMPLE_EVERY;
  #startMs = performance.now();
  #samples: { t: number; count: number; cpuUs: number }[] = [];
  constructor() {
    void started.then(() => { this.#startMs = performance.now(); this.#sample(); });
  }
  add(n: number): void {
    this.#count += n;
    if (this.#count >= this.#nextSample) {
      this.#nextSample = this.#count + SAMPLE_EVERY;
      const now = performance.now(), last = this.#samples.at(-1);
      if (last === undefined || now - last.t >= SAMPLE_MIN_MS) this.#sample(now);
    }
  }
  result(): { count: number; elapsedSec: number; cpuUsPerCount: number | null } {
    this.#sample();
    const from = this.#startMs + WARM_UP_MS;
    const to = Math.min(from + MEASURED_MS, performance.now());
    const a = this.#at(from), b = this.#at(to);
    const count = Math.round(b.count - a.count);
    return { count, elapsedSec: (to - from) / 1000, cpuUsPerCount: count > 0 ? Number(((b.cpuUs - a.cpuUs) / count).toFixed(3)) : null };
  }
  #sample(now = performance.now()): void {
    const cpu = process.cpuUsage();
    this.#samples.push({ t: now, count: this.#count, cpuUs: cpu.user + cpu.system });
  }
  /** Count and CPU at time `t`, linear between the samples around it. */
  #at(t: number): { count: number; cpuUs: number } {
    const s = this.#samples;
    let i = 0;
    while (i < s.length - 1 && s[i + 1].t <= t) i++;
    const lo = s[i], hi = s[Math.min(i + 1, s.length - 1)];
    const f = hi.t > lo.t ? Math.min(1, Math.max(0, (t - lo.t) / (hi.t - lo.t))) : 0;
    return { count: lo.count + f * (hi.count - lo.count), cpuUs: lo.cpuUs + f * (hi.cpuUs - lo.cpuUs) };
  }
}

/** BENCH_SDK_MAX_BATCH_BYTES: the producers' maxBatchBytes (default: the SDK's). */
const producerLimits = process.env.BENCH_SDK_MAX_BATCH_BYTES ? { limits: { maxBatchBytes: Number(process.env.BENCH_SDK_MAX_BATCH_BYTES) } } : {};

async function produce(inflight: number): Promise<void> {
  const client = createProducer({ urls: wsUrl, WebSocket: WS, storage: memoryStorage(), ...producerLimits });
  // NB: one record first, so the topic's metadata and the producer id are in place before the clock starts.
  await client.send(topic, valueAt(wallMs()));
  emit({ ready: true });
  await started;
  const meter = new Meter();
  let errors = 0;
  // The value object is built once: the producer encodes it per send, as an app's would.
  const value = valueAt(0);
  const lane = async (): Promise<void> => {
    while (phase === 'running') {
      try {
        await client.send(topic, value);
        meter.add(1);
      } catch {
        errors++;
      }
    }
  };
  await Promise.all(Array.from({ length: inflight }, lane));
  emit({ ...meter.result(), errors });
  await client.close();
  await exitOnQuit;
}

async function pace(recordsPerSec: number): Promise<void> {
  const client = createProducer({ urls: wsUrl, WebSocket: WS, storage: memoryStorage() });
  await client.send(topic, valueAt(wallMs()));
  emit({ ready: true });
  await started;
  const meter = new Meter();
  let errors = 0;
  const t0 = performance.now();
  let sent = 0;
  // Every millisecond, what the rate owes by now: even spacing at ms granularity (5 records per ms at 5,000/s).
  while (phase === 'running') {
    const due = Math.floor(((performance.now() - t0) * recordsPerSec) / 1000);
    for (; sent < due; sent++) {
      client.send(topic, valueAt(wallMs())).then(() => { meter.add(1); }, () => { errors++; });
    }
    await new Promise((r) => setTimeout(r, PACE_MS));
  }
  await client.producer.flush();
  emit({ ...meter.result(), errors });
  await client.close();
  await exitOnQuit;
}

/** `count` SDK consumer clients, each on its own connection, connected (metadata answered) but not subscribed. */
async function openConsumers(count: number, WebSocketImpl = WS): Promise<RunnelConsumer[]> {
  const clients: RunnelConsumer[] = [];
  for (let i = 0; i < count; i += 100) {
    await Promise.all(Array.from({ length: Math.min(100, count - i) }, async (_, j) => {
      const client = createConsumer({ urls: wsUrl, WebSocket: WebSocketImpl, storage: memoryStorage(), clientId: `sdk-bench-${i + j}` });
      clients.push(client);
      await client.metadata([topic]);
    }));
  }
  return clients;
}

type Value = { t: number; p: string };

async function consume(count: number, read: 'value' | 'offset'): Promise<void> {
  const clients = await openConsumers(count);
  emit({ ready: true });
  await started;
  const meter = new Meter();
  let bytes = 0;
  // NB: reads the value as an app does (a field of the decoded object); `offset` mode reads no lazy field at all.
  const handler = read === 'value'
    ? (record: ConsumerRecord<Value>) => { bytes += record.value.p.length; meter.add(1); }
    : (record: ConsumerRecord<Value>) => { bytes += record.offset & 1; meter.add(1); };
  for (const client of clients) client.subscribe<Value>(topic, handler, { from: 'earliest', consumerId: 'bench' });
  await stopped;
  emit({ ...meter.result(), bytes });
  await exitOnQuit;
}

/** Latencies (ms) in 0.05 ms buckets up to 60 s (above: the last bucket): percentiles of millions of samples without sorting them. */
class LatencyHistogram {
  static readonly BUCKET_MS = 0.05;
  readonly #buckets = new Uint32Array(60_000 / LatencyHistogram.BUCKET_MS + 1);
  count = 0;
  maxMs = -Infinity;
  add(ms: number, times = 1): void {
    const i = Math.min(this.#buckets.length - 1, Math.max(0, Math.floor(ms / LatencyHistogram.BUCKET_MS)));
    this.#buckets[i] += times;
    this.count += times;
    if (ms > this.maxMs) this.maxMs = ms;
  }
  clear(): void { this.#buckets.fill(0); this.count = 0; this.maxMs = -Infinity; }
  /** The upper edge of the bucket holding the q-quantile (null without samples: JSON has no NaN). */
  at(q: number): number | null {
    if (this.count === 0) return null;
    const rank = Math.min(this.count - 1, Math.floor(q * this.count));
    let seen = 0;
    for (let i = 0; i < this.#buckets.length; i++) {
      seen += this.#buckets[i];
      if (seen > rank) return Number(((i + 1) * LatencyHistogram.BUCKET_MS).toFixed(3));
    }
    return this.maxMs;
  }
  result(): { count: number; p50Ms: number | null; p99Ms: number | null; maxMs: number | null } {
    return { count: this.count, p50Ms: this.at(0.5), p99Ms: this.at(0.99), maxMs: this.count ? Number(this.maxMs.toFixed(3)) : null };
  }
}

/** `ws` WebSocket counting the messages it receives (records frames and all): frames per record tell the batch sizes the subscribers see. */
let framesReceived = 0;
class CountingWebSocket extends (WebSocket as unknown as new (url: string) => WebSocket) {
  constructor(url: string) {
    super(url);
    this.on('message', () => { framesReceived++; });
  }
}

/** This process's CPU since `since` (µs, user + system) per delivery and per received frame. */
function cpuPer(since: NodeJS.CpuUsage, deliveries: number, frames: number): { cpuUsPerDelivery: number | null; cpuUsPerFrame: number | null } {
  const cpu = process.cpuUsage(since), us = cpu.user + cpu.system;
  return { cpuUsPerDelivery: deliveries > 0 ? Number((us / deliveries).toFixed(3)) : null, cpuUsPerFrame: frames > 0 ? Number((us / frames).toFixed(2)) : null };
}

/** With a stall trace (cluster.bench.ts BENCH_STALL_TRACE=1): records later than BENCH_STALL_LATE_MS (6) are listed there for stall-episodes.ts. */
const stallTraceFile = process.env.RUNNEL_STALL_TRACE_FILE;
const LATE_MS = Number(process.env.BENCH_STALL_LATE_MS ?? 6);

async function latency(count: number): Promise<void> {
  const late: string[] = [];
  // Send time in the value (sub-ms) → handler; and the record's own timestamp (Date.now(), whole ms) → handler,
  // the measure the bare-protocol subscribers (rawlatency) can take too, for the side-by-side.
  const fromValue = new LatencyHistogram(), fromTimestamp = new LatencyHistogram();
  let measuring = false;
  const clients = await openConsumers(count, CountingWebSocket as unknown as WebSocketConstructor);
  for (const client of clients) {
    client.subscribe<Value>(topic, (record) => {
      if (!measuring) return;
      const now = wallMs(), ms = now - record.value.t;
      if (stallTraceFile && ms > LATE_MS) late.push(`LATE ${now.toFixed(2)} ${ms.toFixed(2)}\n`);
      fromValue.add(ms);
      fromTimestamp.add(now - record.timestampMs);
    }, { from: 'latest', consumerId: 'bench' });
  }
  let framesAtMark = 0, cpuAtMark = process.cpuUsage();
  // Counted only after `mark` (warm-up: JIT, credit windows). NB: set before `ready`: a process running behind
  // reads `start` and `mark` in one chunk, and would otherwise miss the mark (and measure nothing).
  onMark = () => { fromValue.clear(); fromTimestamp.clear(); measuring = true; framesAtMark = framesReceived; cpuAtMark = process.cpuUsage(); };
  emit({ ready: true });
  await stopped;
  if (stallTraceFile) appendFileSync(stallTraceFile, late.join(''));
  const ts = fromTimestamp.result(), frames = framesReceived - framesAtMark;
  emit({ ...fromValue.result(), timestampP50Ms: ts.p50Ms, timestampP99Ms: ts.p99Ms, frames, ...cpuPer(cpuAtMark, fromValue.count, frames) });
  await exitOnQuit;
}

async function rawLatency(connections: number): Promise<void> {
  const histogram = new LatencyHistogram();
  let measuring = false, frames = 0;
  const open = () => openRawSubscriber(wsUrl, topic, 'raw-latency', () => { if (measuring) frames++; }, (records, maxTimestampMs) => {
    if (measuring) histogram.add(wallMs() - maxTimestampMs, records);
  });
  const subscribers: RawSubscriber[] = [];
  for (let i = 0; i < connections; i += 100) subscribers.push(...await Promise.all(Array.from({ length: Math.min(100, connections - i) }, open)));
  for (const sub of subscribers) sub.send({ type: 'subscribe', requestId: 1, topic, partition: 0, topicId: '', from: { kind: 'latest' }, creditBytes: 48 * 1024 * 1024 });
  let cpuAtMark = process.cpuUsage();
  onMark = () => { histogram.clear(); measuring = true; frames = 0; cpuAtMark = process.cpuUsage(); };
  emit({ ready: true });
  await stopped;
  const r = histogram.result();
  // NB: the same measure as the SDK subscribers' timestampP50Ms (whole-ms producer timestamps), reported under both names.
  emit({ ...r, timestampP50Ms: r.p50Ms, timestampP99Ms: r.p99Ms, frames, ...cpuPer(cpuAtMark, r.count, frames) });
  await exitOnQuit;
}

async function raw(connections: number): Promise<void> {
  let meter: Meter | null = null;
  const open = () => openRawSubscriber(wsUrl, topic, 'raw', (records) => { if (meter) meter.add(records); });
  const subscribers: RawSubscriber[] = [];
  for (let i = 0; i < connections; i += 100) subscribers.push(...await Promise.all(Array.from({ length: Math.min(100, connections - i) }, open)));
  emit({ ready: true });
  await started;
  meter = new Meter();
  // NB: every connection subscribes at `start`, from the first record, as the SDK consumers do.
  for (const sub of subscribers) sub.send({ type: 'subscribe', requestId: 1, topic, partition: 0, topicId: '', from: { kind: 'earliest' }, creditBytes: 48 * 1024 * 1024 });
  await stopped;
  emit(meter.result());
  await exitOnQuit;
}

switch (role) {
  case 'produce': await produce(n); break;
  case 'pace': await pace(n); break;
  case 'consume': await consume(n, 'value'); break;
  case 'consumeoffset': await consume(n, 'offset'); break;
  case 'latency': await latency(n); break;
  case 'raw': await raw(n); break;
  case 'rawlatency': await rawLatency(n); break;
  default: throw new Error(`unknown role ${role}`);
}
