/**
 * Slow consumer: 100 live subscribers, then the same produce run again with
 * one more subscriber whose socket stops reading (its net.Socket is
 * paused). The 100 must receive at least 90 % of the records they received
 * without the stalled one (counted, not timed), the broker's memory must
 * stay bounded (the bytes it reports for paused sockets stay within the
 * per-socket bound, and after a warm-up run its RSS grows by less than half
 * the stream while the stalled one's backlog builds), and the
 * stalled one must be cut off with SLOW_CONSUMER.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import type { Socket } from 'node:net';
import { join } from 'node:path';
import { TestClient, makeBatch } from './harness.ts';
import { spawnBroker, type BrokerChild } from './child.ts';

const SUBSCRIBERS = 100;
const BATCHES = 1600;
const RECORDS_PER_BATCH = 600; // ~60 KB batches: 96 MB per run (large against the 0–25 MiB of heap noise in a run's RSS)
const LIMITS = {
  maxBatchBytes: 256 * 1024, maxFrameBytes: 256 * 1024 + 1024, maxBackpressureBytes: 512 * 1024,
  slowConsumerTimeoutMs: 1000, catchUpReadBytes: 256 * 1024,
};

async function rssBytes(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? 0) * 1024;
}

async function metric(port: number, name: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(name));
  return line ? Number(line.split(' ').pop()) : 0;
}

/**
 * One produce run to `topic`; returns records delivered to the subscribers by the end of the run (+ a short grace)
 * and how far the broker's RSS rose above its value at the start of the run (connections already open), so heap
 * left over from an earlier run does not count against this one.
 */
async function run(child: BrokerChild, topic: string, stalled: TestClient | null, subscribers: TestClient[]): Promise<{ delivered: number; rssGrowth: number; pausedPeak: number }> {
  const producer = await TestClient.connect(child.wsUrl);
  const batch = makeBatch(Array.from({ length: RECORDS_PER_BATCH }, (_, i) => `r${i}`.padEnd(100, '.')));
  const rssStart = await rssBytes(child.process.pid!);
  let rssPeak = rssStart;
  const sampler = setInterval(() => void rssBytes(child.process.pid!).then((r) => { rssPeak = Math.max(rssPeak, r); }), 25);
  let pausedPeak = 0;
  const pausedSampler = setInterval(() => void metric(child.port, 'runnel_paused_buffered_bytes').then((b) => { pausedPeak = Math.max(pausedPeak, b); }, () => {}), 100);
  const before = subscribers.reduce((n, s) => n + s.recordCount, 0);
  let next = 0;
  await Promise.all(Array.from({ length: 4 }, async () => {
    while (next < BATCHES) {
      next++;
      const ack = await producer.produce(topic, 0, batch.slice());
      assert.equal(ack.errorCode, 0);
    }
  }));
  await new Promise((r) => setTimeout(r, 1000));
  clearInterval(sampler);
  clearInterval(pausedSampler);
  producer.close();
  void stalled;
  return { delivered: subscribers.reduce((n, s) => n + s.recordCount, 0) - before, rssGrowth: rssPeak - rssStart, pausedPeak };
}

/** The client's TCP socket: pausing it stalls the subscriber below the WebSocket layer. */
function socketOf(c: TestClient): Socket {
  return (c.ws as unknown as { _socket: Socket })._socket;
}

/** Subscribing never creates a topic (issue 11): create it over HTTP first (201, or 409 when it exists). */
async function createTopic(wsUrl: string, name: string): Promise<void> {
  const res = await fetch(`${wsUrl.replace('ws:', 'http:').replace('/v1/ws', '')}/v1/topics`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name, partitions: 1 }) });
  assert.ok(res.status === 201 || res.status === 409, `create topic ${name}: ${res.status}`);
}

async function subscribeAll(wsUrl: string, topic: string): Promise<TestClient[]> {
  await createTopic(wsUrl, topic);
  return Promise.all(Array.from({ length: SUBSCRIBERS }, async () => {
    const c = await TestClient.connect(wsUrl);
    c.decodeRecords = false;
    c.autoCredit = true;
    assert.equal((await c.subscribe(topic, 0, { kind: 'latest' }, 8 * 1024 * 1024)).errorCode, 0);
    return c;
  }));
}

test('one stalled subscriber does not slow 100 others, is cut off, and does not grow broker memory', { timeout: 240_000 }, async () => {
  const dataDir = await mkdtemp(join(tmpdir(), 'runnel-slow-'));
  const child = await spawnBroker(dataDir, LIMITS);
  const clients: TestClient[] = [];
  try {
    const baselineSubs = await subscribeAll(child.wsUrl, 'base');
    clients.push(...baselineSubs);
    const baseline = await run(child, 'base', null, baselineSubs);
    for (const c of baselineSubs) c.close();

    const subs = await subscribeAll(child.wsUrl, 'stall');
    clients.push(...subs);
    const stalled = await TestClient.connect(child.wsUrl);
    clients.push(stalled);
    stalled.decodeRecords = false;
    assert.equal((await stalled.subscribe('stall', 0, { kind: 'latest' }, 64 * 1024 * 1024)).errorCode, 0);
    // Stop reading: the kernel buffers fill, then uWS backpressure builds up on the broker.
    const stalledSocket = socketOf(stalled);
    stalledSocket.pause();
    // Once the broker has cut it, read again: its buffered records and then the 4902 close arrive. (Left unread
    // for longer, uWS drops the closing connection after its close timeout and the client sees only 1006.)
    let running = true;
    const resumeWhenCut = (async () => {
      while (running && await metric(child.port, 'runnel_backpressure_drops_total{reason="slow_consumer"}') < 1) await new Promise((r) => setTimeout(r, 100));
      stalledSocket.resume();
    })();
    const withStalled = await run(child, 'stall', stalled, subs);
    running = false;
    await resumeWhenCut;

    const expected = SUBSCRIBERS * BATCHES * RECORDS_PER_BATCH;
    console.log(`# delivered to ${SUBSCRIBERS}: baseline ${baseline.delivered}/${expected}, with a stalled subscriber ${withStalled.delivered}/${expected}`);
    console.log(`# broker RSS growth during the run: baseline ${(baseline.rssGrowth / 2 ** 20).toFixed(0)} MiB, with stalled ${(withStalled.rssGrowth / 2 ** 20).toFixed(0)} MiB; stream ${(BATCHES * 60_000 / 2 ** 20).toFixed(0)} MiB`);
    assert.ok(withStalled.delivered >= 0.9 * baseline.delivered, 'the 100 get at least 90 % of the baseline deliveries');
    // What the broker holds for slow sockets, as it measures it: seen (the stalled one was paused) and within the
    // per-socket bound (2 × maxBackpressureBytes + 2 frames: beyond, uWS cuts the socket).
    const perSocketBound = 2 * LIMITS.maxBackpressureBytes + 2 * LIMITS.maxFrameBytes;
    console.log(`# paused sockets held at most ${withStalled.pausedPeak} bytes (bound ${perSocketBound})`);
    assert.ok(withStalled.pausedPeak > 0 && withStalled.pausedPeak <= perSocketBound, `paused bytes ${withStalled.pausedPeak} within (0, ${perSocketBound}]`);
    // RSS, from outside: after the baseline run warmed the heap, a run grows it by 0–25 MiB; a broker that kept
    // the stalled subscriber's backlog would grow by about the whole stream (92 MiB).
    assert.ok(withStalled.rssGrowth < (BATCHES * 60_000) / 2, 'broker memory does not grow with the stalled subscriber\'s backlog');
    const drops = await metric(child.port, 'runnel_backpressure_drops_total{reason="slow_consumer"}');
    assert.ok(drops >= 1, `slow_consumer drop counted (${drops})`);
    await stalled.waitClosed(30_000);
    assert.equal(stalled.closeCode, 4902);
    assert.equal(stalled.closeReason, 'SLOW_CONSUMER');
    assert.ok(stalled.recordCount < BATCHES * RECORDS_PER_BATCH, 'the stalled one did not get the whole stream');
  } finally {
    for (const c of clients) c.close();
    child.process.kill('SIGKILL');
    await child.exited;
    await rm(dataDir, { recursive: true, force: true });
  }
});

test('many stalled subscribers: over maxPausedBufferedBytes the most-buffered are cut at once, the rest spared, healthy ones unaffected', { timeout: 120_000 }, async () => {
  const STALLED = 4;
  const dataDir = await mkdtemp(join(tmpdir(), 'runnel-paused-'));
  // The per-socket clock (slowConsumerTimeoutMs) is set far out: only the broker-wide budget can cut anyone here.
  const child = await spawnBroker(dataDir, { ...LIMITS, slowConsumerTimeoutMs: 120_000, maxPausedBufferedBytes: 1024 * 1024 });
  const clients: TestClient[] = [];
  try {
    const healthy = await TestClient.connect(child.wsUrl);
    clients.push(healthy);
    healthy.decodeRecords = false;
    healthy.autoCredit = true;
    await createTopic(child.wsUrl, 'many');
    assert.equal((await healthy.subscribe('many', 0, { kind: 'latest' }, 8 * 1024 * 1024)).errorCode, 0);
    const stalled = await Promise.all(Array.from({ length: STALLED }, async () => {
      const c = await TestClient.connect(child.wsUrl);
      clients.push(c);
      c.decodeRecords = false;
      assert.equal((await c.subscribe('many', 0, { kind: 'latest' }, 64 * 1024 * 1024)).errorCode, 0);
      socketOf(c).pause();
      return c;
    }));
    const producer = await TestClient.connect(child.wsUrl);
    clients.push(producer);
    const batch = makeBatch(Array.from({ length: RECORDS_PER_BATCH }, (_, i) => `r${i}`.padEnd(100, '.')));
    const batches = 300; // ~18 MB: past the loopback socket buffers and maxBackpressureBytes of every stalled socket
    for (let i = 0; i < batches; i++) assert.equal((await producer.produce('many', 0, batch.slice())).errorCode, 0);

    let cut = 0;
    for (let waited = 0; waited < 20_000 && cut === 0; waited += 250) {
      await new Promise((r) => setTimeout(r, 250));
      cut = await metric(child.port, 'runnel_backpressure_drops_total{reason="paused_budget"}');
    }
    await new Promise((r) => setTimeout(r, 1000)); // a few more sweeps: the set of cut sockets is final
    cut = await metric(child.port, 'runnel_backpressure_drops_total{reason="paused_budget"}');
    console.log(`# ${cut} of ${STALLED} stalled subscribers cut by the paused budget`);
    assert.ok(cut >= 1 && cut < STALLED, `the budget cuts some stalled sockets, not all (${cut})`);
    assert.equal(await metric(child.port, 'runnel_backpressure_drops_total{reason="slow_consumer"}'), 0, 'nobody was cut by the per-socket clock');
    // Read again right away: the cut ones find their 4902 close (left unread, uWS would drop them with 1006).
    for (const c of stalled) socketOf(c).resume();
    for (let waited = 0; waited < 30_000 && healthy.recordCount < batches * RECORDS_PER_BATCH; waited += 100) await new Promise((r) => setTimeout(r, 100));
    assert.equal(healthy.recordCount, batches * RECORDS_PER_BATCH, 'the healthy subscriber got every record');
    await new Promise((r) => setTimeout(r, 3000));
    const closed = stalled.filter((c) => c.closeCode !== null);
    assert.equal(closed.length, cut, 'exactly the cut ones are closed');
    for (const c of closed) assert.equal(c.closeCode, 4902);
  } finally {
    for (const c of clients) c.close();
    child.process.kill('SIGKILL');
    await child.exited;
    await rm(dataDir, { recursive: true, force: true });
  }
});
