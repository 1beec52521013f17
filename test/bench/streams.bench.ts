/**
 * `npm run bench -- streams` (issue 14, Must show 3): the Durable Streams
 * endpoint of a Runnel broker side by side with @durable-streams/server 0.3.x
 * in its file-backed mode (LMDB metadata + one append-only segment file per
 * stream; it fdatasyncs the segment before answering an append and holds a
 * per-stream lock across write+fdatasync+LMDB put, so its appends to one stream
 * are serialized), each in its own process on this machine, driven by the same
 * client code (node:http keep-alive for appends and catch-up, fetch for tails), same bodies, same concurrency.
 * Each phase runs for Runnel then the reference before the next phase (load on
 * this shared machine drifts), after one warm-up of both, for BENCH_DS_SECONDS:
 *  - acknowledged appends/s of 100 B bodies, 1 and 64 concurrent writers, one stream;
 *  - catch-up read MB/s, 1 and BENCH_DS_READERS (8) concurrent readers (node:http client):
 *    repeated passes from offset -1 following Stream-Next-Offset to Stream-Up-To-Date (BENCH_DS_READ_MB of 64 KiB appends; Runnel answers up to 1 MiB
 *    a response, the reference the whole stream in one);
 *  - long-poll and SSE tail latency (append sent → data seen by a tailing reader), p50/p99.
 * It first times fdatasync of a 100 B write on the data disk (what bounds one writer).
 * Knobs: BENCH_DS_SECONDS (per append/read phase, default 5), BENCH_DS_READ_MB (8),
 * BENCH_DS_TAIL (samples, 100), BENCH_CPU_PROF=<dir> (CPU profiles of both servers during
 * the catch-up phases, test/bench/cpu-profile.mjs; BENCH_CPU_PROF_PHASE=append1 or append64 profiles
 * that append phase instead), BENCH_DS_BEFORE_SRC=<another checkout> (its
 * broker runs every phase too, as "before"). Last line: {"bench":"streams",...}.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, fdatasyncSync, openSync, readFileSync, writeSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent, get, request } from 'node:http';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { spawnBroker } from '../broker/child.ts';

const SECONDS = Number(process.env.BENCH_DS_SECONDS ?? 5);
const PROFILE_DIR = process.env.BENCH_CPU_PROF;
/** The phase BENCH_CPU_PROF profiles: catchup (default), append1 or append64. */
const PROFILE_PHASE = process.env.BENCH_CPU_PROF_PHASE ?? 'catchup';
/** Another checkout of this repo (its own node_modules or a link to these): its broker runs too, as "before". */
const BEFORE_SRC = process.env.BENCH_DS_BEFORE_SRC;
const READ_MB = Number(process.env.BENCH_DS_READ_MB ?? 8);
const READERS = Number(process.env.BENCH_DS_READERS ?? 8);
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

/** CPU seconds (user + system) a process has used so far, from /proc (Linux). */
function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in clock ticks (USER_HZ 100)
}

/** One append through a lean node:http keep-alive client (see appendRate). */
function appendLean(agent: Agent, url: URL, body: Uint8Array): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = request(url, { agent, method: 'POST', headers: { 'content-type': 'application/octet-stream', 'content-length': body.length } }, (res) => {
      res.resume();
      res.on('end', () => (res.statusCode === 204 || res.statusCode === 200 ? resolve() : reject(new Error(`append ${url.href}: ${res.statusCode}`))));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

/**
 * Acknowledged appends/s by `writers` concurrent writers (one connection each) to one stream. The writers are
 * node:http, not fetch: fetch cost this client ~620 µs of CPU per append (profiled), more than either server
 * spends on it, so a fetch client measured itself (and took the servers' second core at 64 writers).
 */
async function appendRate(base: string, writers: number, seconds = SECONDS): Promise<number> {
  const url = `${base}/v1/stream/bench-append-${writers}-${Date.now()}`;
  await create(url);
  const target = new URL(url);
  const agent = new Agent({ keepAlive: true, maxSockets: writers });
  const body = new Uint8Array(100).fill(97);
  let acked = 0;
  const started = performance.now();
  const until = started + seconds * 1000;
  await Promise.all(Array.from({ length: writers }, async () => { while (performance.now() < until) { await appendLean(agent, target, body); acked++; } }));
  const rate = acked / ((performance.now() - started) / 1000);
  agent.destroy();
  return rate;
}

/** Creates the catch-up stream: READ_MB of 64 KiB appends from 8 writers. */
async function fillReadStream(base: string): Promise<{ url: string; bytes: number }> {
  const url = `${base}/v1/stream/bench-read-${Date.now()}`;
  await create(url);
  const chunk = new Uint8Array(64 * 1024).fill(98);
  const chunks = Math.ceil((READ_MB * 1024 * 1024) / chunk.length);
  await Promise.all(Array.from({ length: 8 }, async (_, w) => { for (let i = w; i < chunks; i += 8) await append(url, chunk); }));
  return { url, bytes: chunks * chunk.length };
}

/** One GET through a lean node:http keep-alive client: bytes counted, not kept; the headers the loop needs. */
function getCounting(agent: Agent, url: string): Promise<{ bytes: number; next: string; upToDate: boolean }> {
  return new Promise((resolve, reject) => {
    get(url, { agent }, (res) => {
      let bytes = 0;
      res.on('data', (c: Buffer) => { bytes += c.length; });
      res.on('end', () => resolve({ bytes, next: String(res.headers['stream-next-offset']), upToDate: res.headers['stream-up-to-date'] === 'true' }));
      res.on('error', reject);
    }).on('error', reject);
  });
}

/**
 * Whole catch-up passes from -1 by `readers` concurrent readers for at least `seconds` (each at least one):
 * MB/s of all readers and responses per pass. The reader is node:http, not fetch: fetch's web streams cost this
 * client more CPU per MB than either server spends (profiled), which would measure the client, not the servers.
 */
async function catchUpRate(url: string, expected: number, readers: number, seconds = SECONDS): Promise<{ mbps: number; responses: number }> {
  const agent = new Agent({ keepAlive: true, maxSockets: readers });
  let bytes = 0;
  let responses = 0;
  let passes = 0;
  const started = performance.now();
  await Promise.all(Array.from({ length: readers }, async () => {
    do {
      let offset = '-1';
      let got = 0;
      for (;;) {
        const r = await getCounting(agent, `${url}?offset=${encodeURIComponent(offset)}`);
        got += r.bytes;
        responses++;
        offset = r.next;
        if (r.upToDate) break;
      }
      if (got !== expected) throw new Error(`read ${got} bytes, wrote ${expected}`);
      bytes += got;
      passes++;
    } while (performance.now() - started < seconds * 1000);
  }));
  const elapsed = (performance.now() - started) / 1000;
  agent.destroy();
  return { mbps: bytes / 1024 / 1024 / elapsed, responses: Math.round(responses / passes) };
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

/** fdatasync of a 100 B append on the disk of `dir`, ms (p50/p99 of 200). */
function fsyncProbe(dir: string): { p50: number; p99: number; mean: number } {
  const file = join(dir, 'fsync-probe');
  const fd = openSync(file, 'w');
  const b = new Uint8Array(100).fill(97);
  const t: number[] = [];
  for (let i = 0; i < 200; i++) {
    writeSync(fd, b);
    const s = performance.now();
    fdatasyncSync(fd);
    t.push(performance.now() - s);
  }
  closeSync(fd);
  t.sort((a, b) => a - b);
  const r = (x: number) => Number(x.toFixed(2));
  return { p50: r(pct(t, 50)), p99: r(pct(t, 99)), mean: r(t.reduce((a, b) => a + b, 0) / t.length) };
}

/** A broker from another checkout of this repo (BENCH_DS_BEFORE_SRC): before/after on one machine and load. */
async function spawnBrokerFrom(root: string, dataDir: string): Promise<{ port: number; child: ChildProcess }> {
  const child = spawn(process.execPath, ['--import', 'tsx', join(root, 'test/broker/broker-child.ts'), dataDir, '{}'], {
    cwd: root, stdio: ['ignore', 'pipe', 'ignore'], env: { ...process.env, RUNNEL_REQUIRE_NATIVE_UWS: '1' },
  });
  const port = await new Promise<number>((resolve, reject) => {
    createInterface({ input: child.stdout! }).once('line', (line) => resolve((JSON.parse(line) as { port: number }).port));
    child.once('exit', (code) => reject(new Error(`before-broker exited with ${code}`)));
  });
  return { port, child };
}

type Server = { name: string; base: string; child: ChildProcess };

async function main(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'runnel-bench-ds-'));
  if (PROFILE_DIR) {
    // Both servers load the profiler; SIGUSR2 starts and stops it around the catch-up phase only.
    await mkdir(PROFILE_DIR, { recursive: true });
    process.env.NODE_OPTIONS = `${process.env.NODE_OPTIONS ?? ''} --import=${fileURLToPath(new URL('./cpu-profile.mjs', import.meta.url))}`;
    process.env.RUNNEL_CPU_PROF_DIR = PROFILE_DIR;
  }
  const broker = await spawnBroker(join(dir, 'runnel'));
  const reference = await spawnReference(join(dir, 'reference'));
  const servers: Server[] = [
    { name: 'runnel', base: `http://127.0.0.1:${broker.port}`, child: broker.process },
    { name: 'reference', base: reference.url.replace(/\/$/, ''), child: reference.child },
  ];
  if (BEFORE_SRC) {
    const before = await spawnBrokerFrom(BEFORE_SRC, join(dir, 'runnel-before'));
    servers.unshift({ name: 'before', base: `http://127.0.0.1:${before.port}`, child: before.child });
  }
  try {
    const fsync = fsyncProbe(dir);
    console.log(`fdatasync of a 100 B append on this disk: p50 ${fsync.p50} ms, p99 ${fsync.p99} ms, mean ${fsync.mean} ms (one synced writer: at most ~${Math.round(1000 / fsync.mean)} appends/s)`);
    console.log(`${SECONDS} s per append/read phase, ${READ_MB} MB catch-up stream, ${TAIL} tail samples; both servers fdatasync before answering an append`);
    const out: Record<string, Record<string, number>> = Object.fromEntries(servers.map((s) => [s.name, {}]));
    const each = async (fn: (s: Server) => Promise<void>) => { for (const s of servers) await fn(s); };
    // Warm-up (JIT, connections, first files), not counted.
    await each(async (s) => { await appendRate(s.base, 8, 1); const f = await fillReadStream(s.base); await catchUpRate(f.url, f.bytes, 1, 0); });
    for (const writers of [1, 64]) {
      await each(async (s) => {
        const cpu0 = cpuSeconds(s.child.pid!), client0 = process.cpuUsage();
        const started = performance.now();
        const isProfiled = PROFILE_DIR !== undefined && PROFILE_PHASE === `append${writers}`;
        if (isProfiled) s.child.kill('SIGUSR2');
        const rate = await appendRate(s.base, writers);
        if (isProfiled) s.child.kill('SIGUSR2');
        const appends = rate * ((performance.now() - started) / 1000), client = process.cpuUsage(client0);
        out[s.name][`appendsPerSec${writers}`] = Math.round(rate);
        out[s.name][`appendCpuUs${writers}`] = Math.round(((cpuSeconds(s.child.pid!) - cpu0) * 1e6) / appends);
        // The writers' own CPU per append: with one writer, client CPU + server CPU + fdatasync is the round trip's floor.
        out[s.name][`appendClientCpuUs${writers}`] = Math.round((client.user + client.system) / appends);
      });
    }
    for (const readers of [1, READERS]) {
      await each(async (s) => {
        const f = await fillReadStream(s.base);
        await catchUpRate(f.url, f.bytes, readers, 0);
        const isProfiled = PROFILE_DIR !== undefined && PROFILE_PHASE === 'catchup';
        if (isProfiled) s.child.kill('SIGUSR2');
        const cpu0 = cpuSeconds(s.child.pid!), client0 = process.cpuUsage(), started = performance.now();
        const r = await catchUpRate(f.url, f.bytes, readers);
        if (isProfiled) s.child.kill('SIGUSR2');
        const mb = (r.mbps * (performance.now() - started)) / 1000, client = process.cpuUsage(client0);
        const suffix = readers === 1 ? '' : String(readers);
        out[s.name][`catchUpMBps${suffix}`] = Number(r.mbps.toFixed(1));
        // CPU-ms per MB read, the server's and this client's: which of the two bounds the rate on 2 shared cores.
        out[s.name][`catchUpServerCpuMsPerMB${suffix}`] = Number((((cpuSeconds(s.child.pid!) - cpu0) * 1000) / mb).toFixed(2));
        out[s.name][`catchUpClientCpuMsPerMB${suffix}`] = Number((((client.user + client.system) / 1000) / mb).toFixed(2));
        out[s.name].catchUpResponsesPerPass = r.responses;
      });
    }
    await each(async (s) => {
      const lp = await longPollLatency(s.base);
      out[s.name].longPollP50Ms = Number(pct(lp, 50).toFixed(2));
      out[s.name].longPollP99Ms = Number(pct(lp, 99).toFixed(2));
    });
    await each(async (s) => {
      const sse = await sseLatency(s.base);
      out[s.name].sseP50Ms = Number(pct(sse, 50).toFixed(2));
      out[s.name].sseP99Ms = Number(pct(sse, 99).toFixed(2));
    });
    for (const s of servers) {
      const r = out[s.name];
      console.log(`${s.name.padEnd(10)} appends/s 1 writer ${r.appendsPerSec1} (${r.appendCpuUs1} µs server CPU each, ${r.appendClientCpuUs1} µs client CPU), 64 writers ${r.appendsPerSec64} (${r.appendCpuUs64} µs); catch-up ${r.catchUpMBps} MB/s 1 reader, ${r[`catchUpMBps${READERS}`]} MB/s ${READERS} readers (${r.catchUpResponsesPerPass} responses a pass; CPU-ms per MB, 1 reader: server ${r.catchUpServerCpuMsPerMB}, client ${r.catchUpClientCpuMsPerMB}); long-poll p50 ${r.longPollP50Ms} ms p99 ${r.longPollP99Ms} ms; SSE p50 ${r.sseP50Ms} ms p99 ${r.sseP99Ms} ms`);
    }
    const runnel = out.runnel, ref = out.reference;
    const ratio = (a: number, b: number) => Number((a / b).toFixed(2));
    console.log(JSON.stringify({
      bench: 'streams', seconds: SECONDS, readMB: READ_MB, tailSamples: TAIL, fdatasyncMs: fsync, runnel, reference: ref, ...(out.before ? { before: out.before } : {}),
      ratio: { appends1: ratio(runnel.appendsPerSec1, ref.appendsPerSec1), appends64: ratio(runnel.appendsPerSec64, ref.appendsPerSec64), catchUp: ratio(runnel.catchUpMBps, ref.catchUpMBps), [`catchUp${READERS}`]: ratio(runnel[`catchUpMBps${READERS}`], ref[`catchUpMBps${READERS}`]) },
    }));
  } finally {
    // Every server gone before its data dir is removed (a broker still flushing refills a topic dir: ENOTEMPTY).
    await Promise.all(servers.map((s) => new Promise<void>((resolve) => {
      if (s.child.exitCode !== null || s.child.signalCode !== null) return resolve();
      s.child.once('exit', () => resolve());
      s.child.kill('SIGTERM');
    })));
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
