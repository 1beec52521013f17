/**
 * Client process for `sdk.bench.ts` (not a benchmark itself): the SDK as an
 * app uses it, in Node with `ws`. Roles:
 *   produce <wsUrl> <topic> <inflight>             one producer, one promise per record, `inflight` outstanding
 *   pace <wsUrl> <topic> <recordsPerSec>           one producer at a fixed rate; each value carries its send time
 *   consume <wsUrl> <topic> <clients>              `clients` SDK consumers (one connection each) from earliest,
 *                                                  per-record handler reading every record's `value`
 *   latency <wsUrl> <topic> <clients>              `clients` SDK consumers from latest: send time → handler
 *   raw <wsUrl> <topic> <connections>              bare-protocol subscribers from earliest (raw-ws-reader.ts),
 *                                                  counting records from batch headers: the broker's ceiling
 * Protocol with the parent (bench-processes.ts): prints `{"ready":true}` once
 * connected; reads `start`, `mark` (restart the counts after warm-up) and
 * `stop` on stdin; prints one JSON result line on stop, and exits on `quit`. Values are 100 B of
 * JSON (`{"t":<ms>,"p":"xxx…"}`), as a typical small event.
 */
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { WebSocket } from 'ws';
import { createConsumer, createProducer, type RunnelConsumer, type WebSocketConstructor } from '@runnel/client';
import { memoryStorage } from '@runnel/client/memory';
import { openRawSubscriber, type RawSubscriber } from './raw-subscriber.ts';

const [role, wsUrl, topic, arg] = process.argv.slice(2);
const n = Number(arg);
const WS = WebSocket as unknown as WebSocketConstructor;
/** Value bytes of every record (JSON text). */
export const VALUE_BYTES = 100;

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

/** BENCH_SDK_CPU_PROF=<dir>: a CPU profile of the measured part (`mark` to `stop`), `<dir>/sdk-<role>-<pid>.cpuprofile`. */
const profileDir = process.env.BENCH_SDK_CPU_PROF;
const profiler = profileDir ? new Session() : null;
if (profiler) {
  profiler.connect();
  profiler.post('Profiler.enable');
}
createInterface({ input: process.stdin }).on('line', (line) => {
  if (line === 'mark') profiler?.post('Profiler.start');
});

function emit(o: object): void {
  // NB: the main-thread inspector answers synchronously, so the profile is written before the result line.
  if (profiler && 'elapsedSec' in o) {
    profiler.post('Profiler.stop', (error, result) => {
      if (!error) writeFileSync(join(profileDir!, `sdk-${role}-${process.pid}.cpuprofile`), JSON.stringify(result.profile));
    });
  }
  process.stdout.write(`${JSON.stringify(o)}\n`);
}

/**
 * Milliseconds on the clock processes of one machine share (Date.now()), to sub-millisecond: performance.now()
 * plus its offset to Date.now() taken at a millisecond tick. NB: not performance.timeOrigin, which measured up
 * to 18 ms apart between two Node 20 processes here.
 */
const clockOffsetMs = ((): number => {
  const first = Date.now();
  let now = first;
  while (now === first) now = Date.now();
  return now - performance.now();
})();
const wallMs = (): number => performance.now() + clockOffsetMs;

/** A 100-byte JSON value `{"t":<ms>,"p":"…"}` (the padding makes up the length). */
function valueAt(t: number): { t: number; p: string } {
  const head = JSON.stringify({ t, p: '' }).length;
  return { t, p: 'x'.repeat(Math.max(0, VALUE_BYTES - head)) };
}

/** Counts since `start` (or since the last `mark`), their elapsed time and this process's CPU per count (µs, user + system). */
class Meter {
  count = 0;
  #since = 0;
  #cpu = process.cpuUsage();
  constructor() {
    void started.then(() => { this.#since = performance.now(); this.#cpu = process.cpuUsage(); });
    onMark = () => { this.count = 0; this.#since = performance.now(); this.#cpu = process.cpuUsage(); };
  }
  result(): { count: number; elapsedSec: number; cpuUsPerCount: number | null } {
    const cpu = process.cpuUsage(this.#cpu);
    return { count: this.count, elapsedSec: (performance.now() - this.#since) / 1000, cpuUsPerCount: this.count > 0 ? Number(((cpu.user + cpu.system) / this.count).toFixed(3)) : null };
  }
}

async function produce(inflight: number): Promise<void> {
  const client = createProducer({ urls: wsUrl, WebSocket: WS, storage: memoryStorage() });
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
        meter.count++;
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
      client.send(topic, valueAt(wallMs())).then(() => { meter.count++; }, () => { errors++; });
    }
    await new Promise((r) => setTimeout(r, 1));
  }
  await client.producer.flush();
  emit({ ...meter.result(), errors });
  await client.close();
  await exitOnQuit;
}

/** `count` SDK consumer clients, each on its own connection, connected (metadata answered) but not subscribed. */
async function openConsumers(count: number): Promise<RunnelConsumer[]> {
  const clients: RunnelConsumer[] = [];
  for (let i = 0; i < count; i += 100) {
    await Promise.all(Array.from({ length: Math.min(100, count - i) }, async (_, j) => {
      const client = createConsumer({ urls: wsUrl, WebSocket: WS, storage: memoryStorage(), clientId: `sdk-bench-${i + j}` });
      clients.push(client);
      await client.metadata([topic]);
    }));
  }
  return clients;
}

type Value = { t: number; p: string };

async function consume(count: number): Promise<void> {
  const clients = await openConsumers(count);
  emit({ ready: true });
  await started;
  const meter = new Meter();
  let bytes = 0;
  // NB: reads the value as an app does (a field of the decoded object).
  for (const client of clients) client.subscribe<Value>(topic, (record) => { bytes += record.value.p.length; meter.count++; }, { from: 'earliest', consumerId: 'bench' });
  await stopped;
  emit({ ...meter.result(), bytes });
  await exitOnQuit;
}

async function latency(count: number): Promise<void> {
  const samples: number[] = [];
  let measuring = false;
  const clients = await openConsumers(count);
  for (const client of clients) client.subscribe<Value>(topic, (record) => { if (measuring) samples.push(wallMs() - record.value.t); }, { from: 'latest', consumerId: 'bench' });
  emit({ ready: true });
  await started;
  // Counted only after `mark` (warm-up: JIT, credit windows).
  onMark = () => { samples.length = 0; measuring = true; };
  await stopped;
  samples.sort((a, b) => a - b);
  const at = (q: number): number => samples.length === 0 ? NaN : samples[Math.min(samples.length - 1, Math.floor(q * samples.length))];
  emit({ count: samples.length, p50Ms: at(0.5), p99Ms: at(0.99), maxMs: samples[samples.length - 1] ?? NaN });
  await exitOnQuit;
}

async function raw(connections: number): Promise<void> {
  let meter: Meter | null = null;
  const open = () => openRawSubscriber(wsUrl, topic, 'raw', (records) => { if (meter) meter.count += records; });
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
  case 'consume': await consume(n); break;
  case 'latency': await latency(n); break;
  case 'raw': await raw(n); break;
  default: throw new Error(`unknown role ${role}`);
}
