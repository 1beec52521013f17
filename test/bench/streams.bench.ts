/**
 * `npm run bench -- streams` (issue 14, Must show 3): the Durable Streams
 * endpoint of a Runnel broker side by side with @durable-streams/server in its
 * file-backed mode (LMDB + append-only segment files; it fdatasyncs each
 * append before answering, as Runnel does), each in its own process on this
 * machine, driven by the same client code over HTTP/1.1 keep-alive:
 *  - acknowledged appends/s of 100 B bodies, 1 and 64 concurrent writers;
 *  - catch-up read MB/s from offset -1 following Stream-Next-Offset;
 *  - long-poll and SSE tail latency (append sent → data seen by a tailing reader), p50/p99.
 * Knobs: BENCH_DS_APPENDS (per writer count, default 2000), BENCH_DS_READ_MB (8),
 * BENCH_DS_TAIL (samples, 100). Last line: {"bench":"streams",...}.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { spawnBroker } from '../broker/child.ts';

const APPENDS = Number(process.env.BENCH_DS_APPENDS ?? 2000);
const READ_MB = Number(process.env.BENCH_DS_READ_MB ?? 8);
const TAIL = Number(process.env.BENCH_DS_TAIL ?? 100);

async function spawnReference(dataDir: string): Promise<{ url: string; child: ChildProcess }> {
  const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), '--reference-child', dataDir], { stdio: ['ignore', 'pipe', 'inherit'] });
  const url = await new Promise<string>((resolve, reject) => {
    // It logs to stdout too: the URL is the line that starts with {"url".
    createInterface({ input: child.stdout! }).on('line', (line) => { if (line.startsWith('{"url"')) resolve((JSON.parse(line) as { url: string }).url); });
    child.once('exit', (code) => reject(new Error(`reference server exited with ${code}`)));
  });
  return { url, child };
}

function pct(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

async function create(url: string, type = 'application/octet-stream'): Promise<string> {
  const res = await fetch(url, { method: 'PUT', headers: { 'content-type': type } });
  if (res.status !== 201) throw new Error(`create ${url}: ${res.status} ${await res.text()}`);
  return res.headers.get('stream-next-offset')!;
}

async function append(url: string, body: Uint8Array<ArrayBuffer>): Promise<string> {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body });
  if (res.status !== 204 && res.status !== 200) throw new Error(`append ${url}: ${res.status} ${await res.text()}`);
  await res.arrayBuffer();
  return res.headers.get('stream-next-offset')!;
}

async function appendRate(base: string, writers: number): Promise<number> {
  const url = `${base}/v1/stream/bench-append-${writers}-${Date.now()}`;
  await create(url);
  const body = new Uint8Array(100).fill(97);
  const per = Math.ceil(APPENDS / writers);
  const started = performance.now();
  await Promise.all(Array.from({ length: writers }, async () => { for (let i = 0; i < per; i++) await append(url, body); }));
  return (per * writers) / ((performance.now() - started) / 1000);
}

async function catchUpRate(base: string): Promise<number> {
  const url = `${base}/v1/stream/bench-read-${Date.now()}`;
  await create(url);
  const chunk = new Uint8Array(64 * 1024).fill(98);
  const chunks = Math.ceil((READ_MB * 1024 * 1024) / chunk.length);
  await Promise.all(Array.from({ length: 8 }, async (_, w) => { for (let i = w; i < chunks; i += 8) await append(url, chunk); }));
  let offset = '-1';
  let bytes = 0;
  const started = performance.now();
  for (;;) {
    const res = await fetch(`${url}?offset=${encodeURIComponent(offset)}`);
    bytes += (await res.arrayBuffer()).byteLength;
    offset = res.headers.get('stream-next-offset')!;
    if (res.headers.get('stream-up-to-date') === 'true') break;
  }
  if (bytes !== chunks * chunk.length) throw new Error(`read ${bytes} bytes, wrote ${chunks * chunk.length}`);
  return bytes / 1024 / 1024 / ((performance.now() - started) / 1000);
}

async function longPollLatency(base: string): Promise<number[]> {
  const url = `${base}/v1/stream/bench-lp-${Date.now()}`;
  let offset = await create(url);
  const body = new Uint8Array(100).fill(99);
  const samples: number[] = [];
  for (let i = 0; i < TAIL; i++) {
    const poll = fetch(`${url}?offset=${encodeURIComponent(offset)}&live=long-poll`);
    await new Promise((r) => setTimeout(r, 5)); // the poll is parked before the append
    const sent = performance.now();
    const [res] = await Promise.all([poll, append(url, body)]);
    await res.arrayBuffer();
    samples.push(performance.now() - sent);
    offset = res.headers.get('stream-next-offset')!;
  }
  return samples.sort((a, b) => a - b);
}

async function sseLatency(base: string): Promise<number[]> {
  const url = `${base}/v1/stream/bench-sse-${Date.now()}`;
  await create(url);
  const body = new Uint8Array(100).fill(100);
  const stop = new AbortController();
  const res = await fetch(`${url}?offset=now&live=sse`, { signal: stop.signal });
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  let buffered = '';
  let dataEvents = 0;
  let waiter: (() => void) | undefined;
  void (async () => {
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        buffered += decoder.decode(value, { stream: true });
        let at: number;
        while ((at = buffered.indexOf('\n\n')) >= 0) {
          if (buffered.slice(0, at).startsWith('event: data')) { dataEvents++; waiter?.(); }
          buffered = buffered.slice(at + 2);
        }
      }
    } catch { /* aborted at the end */ }
  })();
  const samples: number[] = [];
  for (let i = 0; i < TAIL; i++) {
    const seen = dataEvents;
    const sent = performance.now();
    const arrived = new Promise<void>((r) => { waiter = () => { if (dataEvents > seen) r(); }; });
    await Promise.all([arrived, append(url, body)]);
    samples.push(performance.now() - sent);
  }
  stop.abort();
  return samples.sort((a, b) => a - b);
}

async function measure(name: string, base: string): Promise<Record<string, number>> {
  const a1 = await appendRate(base, 1);
  const a64 = await appendRate(base, 64);
  const read = await catchUpRate(base);
  const lp = await longPollLatency(base);
  const sse = await sseLatency(base);
  const r = {
    appendsPerSec1: Math.round(a1), appendsPerSec64: Math.round(a64), catchUpMBps: Number(read.toFixed(1)),
    longPollP50Ms: Number(pct(lp, 50).toFixed(2)), longPollP99Ms: Number(pct(lp, 99).toFixed(2)),
    sseP50Ms: Number(pct(sse, 50).toFixed(2)), sseP99Ms: Number(pct(sse, 99).toFixed(2)),
  };
  console.log(`${name.padEnd(10)} appends/s 1 writer ${r.appendsPerSec1}, 64 writers ${r.appendsPerSec64}; catch-up ${r.catchUpMBps} MB/s; long-poll p50 ${r.longPollP50Ms} ms p99 ${r.longPollP99Ms} ms; SSE p50 ${r.sseP50Ms} ms p99 ${r.sseP99Ms} ms`);
  return r;
}

async function main(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'runnel-bench-ds-'));
  const broker = await spawnBroker(join(dir, 'runnel'));
  const reference = await spawnReference(join(dir, 'reference'));
  try {
    console.log(`${APPENDS} appends per writer count, ${READ_MB} MB catch-up, ${TAIL} tail samples; both servers fdatasync before answering an append`);
    const runnel = await measure('runnel', `http://127.0.0.1:${broker.port}`);
    const ref = await measure('reference', reference.url.replace(/\/$/, ''));
    const ratio = (a: number, b: number) => Number((a / b).toFixed(2));
    console.log(JSON.stringify({
      bench: 'streams', appends: APPENDS, readMB: READ_MB, tailSamples: TAIL, runnel, reference: ref,
      ratio: { appends1: ratio(runnel.appendsPerSec1, ref.appendsPerSec1), appends64: ratio(runnel.appendsPerSec64, ref.appendsPerSec64), catchUp: ratio(runnel.catchUpMBps, ref.catchUpMBps) },
    }));
  } finally {
    broker.process.kill('SIGTERM');
    reference.child.kill('SIGTERM');
    await broker.exited;
    await rm(dir, { recursive: true, force: true });
  }
}

// Child mode: run the reference server and print its URL.
if (process.argv[2] === '--reference-child') {
  const { DurableStreamTestServer } = await import('@durable-streams/server');
  const server = new DurableStreamTestServer({ port: 0, dataDir: process.argv[3], compression: false });
  const url = await server.start();
  process.stdout.write(`${JSON.stringify({ url })}\n`);
  process.on('SIGTERM', () => void server.stop().then(() => process.exit(0)));
} else {
  await main();
}
