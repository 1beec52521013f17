/**
 * Quotas over real sockets (issue 11, "Must show" 4): a broker child process
 * with HS256 tokens and a config file's `quotas`, driven by the real SDK
 * (`@runnel/client` with `ws`) and by HTTP.
 *
 * - A subject producing as fast as it can is held to its records/s quota
 *   (its acks slow down to the bucket's rate), while another subject
 *   producing at a paced 500 records/s keeps that rate within 10 %; the
 *   throttles show in runnel_quota_throttled_total{kind="produceRecords"}.
 * - An HTTP produce that would wait longer than maxThrottleDelayMs is
 *   refused 429 THROTTLING_QUOTA_EXCEEDED with Retry-After and retryAfterMs,
 *   and the same request succeeds once that time has passed.
 * - Connections per IP: the (max+1)-th WebSocket upgrade is refused 429; a
 *   closed socket frees its unit.
 * - A fetch-bytes quota slows a WebSocket consumer's catch-up to about the
 *   quota (credit grants withheld), without an error, every record once; a
 *   huge credit grant over the raw protocol does not buy its bytes early.
 *   Two ways around the fetch quota that need a session change are `todo`
 *   tests (they run; remove the `todo` once fixed): the initial credit of a
 *   subscribe is never charged, nor are grants that join a withheld one.
 * - Topics per subject: the creation past maxTopicsPerSubject is refused 429
 *   LIMIT_EXCEEDED, a deleted topic frees its unit. `todo`: a WebSocket
 *   produce to a missing topic creates it with a publish grant alone,
 *   outside the createTopic grant and the quota.
 *
 * Rates are low (2,000 records/s, 256 KiB/s) so that on a loaded 2-core
 * machine the broker and the clients are never the bottleneck; the bounds
 * are wide (A within [0.5, 1.15] × quota, B within 10 %, fetch within
 * [0.5, 1.15] × quota) and nothing else about wall-clock speed is asserted.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { WebSocket } from 'ws';
import { createClient, type RunnelClient, type WebSocketConstructor } from '@runnel/client';
import { FrameKind, PROTOCOL_VERSION } from '@runnel/client/codec';
import { TestClient, makeBatch } from '../broker/harness.ts';
import { SecureBroker } from './secure-broker.ts';
import { TestIssuer } from './tokens.ts';

const WS = WebSocket as unknown as WebSocketConstructor;

/** The quotas under test (per subject; every subject gets the same ones). */
const PRODUCE_RECORDS_PER_SEC = 2000;
const FETCH_BYTES_PER_SEC = 256 * 1024;
const FETCH_BURST_BYTES = 64 * 1024;
const MAX_CONNECTIONS_PER_IP = 4;
/** The admin creates 5 topics in before(). */
const MAX_TOPICS_PER_SUBJECT = 6;
/** Broker and SDK batch size: small, so a consumer's credit grants (creditWindowBytes/2, at least maxBatchBytes) stay well within what the quota repays in maxThrottleDelayMs. */
const MAX_BATCH_BYTES = 64 * 1024;

const B_RECORDS_PER_SEC = 500;
const WARM_UP_MS = 1000;
const MEASURE_MS = 6000;

let issuer: TestIssuer;
let broker: SecureBroker;
let adminToken: string;

before(async () => {
  issuer = new TestIssuer();
  const configFile = join(issuer.dir, 'quota-config.json');
  writeFileSync(configFile, JSON.stringify({
    limits: { maxBatchBytes: MAX_BATCH_BYTES },
    quotas: {
      perSubject: {
        produceRecords: { perSecond: PRODUCE_RECORDS_PER_SEC, burst: PRODUCE_RECORDS_PER_SEC },
        fetchBytes: { perSecond: FETCH_BYTES_PER_SEC, burst: FETCH_BURST_BYTES },
      },
      maxConnectionsPerIp: MAX_CONNECTIONS_PER_IP,
      maxTopicsPerSubject: MAX_TOPICS_PER_SUBJECT,
    },
  }));
  broker = await SecureBroker.start(['--auth-secret', issuer.hsSecret, '--config', configFile]);
  adminToken = await issuer.hs256('quota-admin', { admin: true });
  for (const [name, partitions] of [['quota.a', 1], ['quota.b', 1], ['quota.http', 1], ['quota.http2', 2], ['quota.fetch', 1]] as const) {
    const res = await fetch(`${broker.url}/v1/topics`, {
      method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${adminToken}` },
      body: JSON.stringify({ name, partitions, replicationFactor: 1 }),
    });
    assert.equal(res.status, 201, `create ${name}: ${res.status} ${await res.text()}`);
  }
});

after(async () => {
  await broker?.stop();
  issuer?.remove();
});

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Runs `body`; prints the broker's log when it fails. */
async function withLog(body: () => Promise<void>): Promise<void> {
  try {
    await body();
  } catch (error) {
    console.error(broker.log());
    throw error;
  }
}

async function metric(line: RegExp): Promise<number> {
  const res = await fetch(`${broker.url}/metrics`, { headers: { authorization: `Bearer ${adminToken}` } });
  assert.equal(res.status, 200);
  const m = line.exec(await res.text());
  return m === null ? 0 : Number(m[1]);
}

function client(token: string, limits: Parameters<typeof createClient>[0]['limits'] = {}): RunnelClient {
  return createClient({ urls: broker.wsUrl, WebSocket: WS, token, limits: { maxBatchBytes: MAX_BATCH_BYTES - 1024, ...limits } });
}

/** Opens a raw WebSocket: 'open', or the HTTP status the upgrade was refused with. */
function dial(): Promise<{ socket: WebSocket; status: 'open' } | { status: number }> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(broker.wsUrl);
    socket.once('open', () => resolve({ socket, status: 'open' }));
    socket.once('unexpected-response', (_req, res) => {
      resolve({ status: res.statusCode ?? 0 });
      res.resume();
      socket.terminate();
    });
    socket.once('error', (e) => reject(e));
  });
}

test(`connections per IP: the ${MAX_CONNECTIONS_PER_IP + 1}th WebSocket is refused 429 at the upgrade; a closed one frees its unit`, { timeout: 60_000 }, () => withLog(async () => {
  const before = await metric(/^runnel_quota_throttled_total\{kind="connectionsPerIp"\} (\d+)/m);
  const open: WebSocket[] = [];
  try {
    for (let i = 0; i < MAX_CONNECTIONS_PER_IP; i++) {
      const r = await dial();
      assert.equal(r.status, 'open', `connection ${i + 1} of ${MAX_CONNECTIONS_PER_IP}`);
      if ('socket' in r) open.push(r.socket);
    }
    const refused = await dial();
    assert.equal(refused.status, 429, 'one more than maxConnectionsPerIp is refused at the upgrade');
    assert.equal(await metric(/^runnel_quota_throttled_total\{kind="connectionsPerIp"\} (\d+)/m), before + 1);

    // Closing one gives its unit back (once the broker has seen the close).
    const closed = new Promise<void>((r) => open[0].once('close', () => r()));
    open.shift()!.close();
    await closed;
    let again: Awaited<ReturnType<typeof dial>> = { status: 0 };
    for (const deadline = Date.now() + 5000; Date.now() < deadline; await sleep(50)) {
      again = await dial();
      if (again.status === 'open') break;
    }
    assert.equal(again.status, 'open', 'a closed connection frees its unit');
    if ('socket' in again) open.push(again.socket);
    assert.equal((await dial()).status, 429, 'and the quota is full again');
  } finally {
    for (const s of open) s.close();
  }
  await sleep(200); // the broker releases the units on close; later tests open SDK connections
}));

test(`produceRecords ${PRODUCE_RECORDS_PER_SEC}/s per subject: a flooding subject is held to the quota, a paced ${B_RECORDS_PER_SEC}/s subject keeps its rate within 10 %`, { timeout: 90_000 }, () => withLog(async () => {
  const throttledBefore = await metric(/^runnel_quota_throttled_total\{kind="produceRecords"\} (\d+)/m);
  // A: small batches (100 records), so its in-flight batches (5 per partition) are held, not refused.
  const a = client(await issuer.hs256('quota-a', { publish: ['quota.a'] }), { maxBatchRecords: 100 });
  const b = client(await issuer.hs256('quota-b', { publish: ['quota.b'] }));
  const errors: unknown[] = [];
  a.on('error', (e) => errors.push(e));
  b.on('error', (e) => errors.push(e));
  const aAcks: number[] = [];
  const bAcks: number[] = [];
  let running = true;
  try {
    // A: as fast as it can, a promise per record, ~4,000 records always outstanding.
    let outstanding = 0;
    let n = 0;
    const pump = (): void => {
      while (running && outstanding < 4000) {
        outstanding++;
        a.producer.send('quota.a', { n: n++ }).then(
          () => { outstanding--; aAcks.push(performance.now()); pump(); },
          (e) => { outstanding--; if (running) errors.push(e); },
        );
      }
    };
    // B: paced at 500 records/s by the clock (sends what is due every 10 ms, so timer lag does not lower the rate).
    const pace = async (): Promise<void> => {
      const started = performance.now();
      let sent = 0;
      while (running) {
        const due = Math.floor(((performance.now() - started) * B_RECORDS_PER_SEC) / 1000);
        for (; sent < due; sent++) {
          b.producer.send('quota.b', { n: sent }).then(() => { bAcks.push(performance.now()); }, (e) => { if (running) errors.push(e); });
        }
        await sleep(10);
      }
    };
    const t0 = performance.now();
    pump();
    const paced = pace();
    await sleep(WARM_UP_MS + MEASURE_MS + 500);
    running = false;
    await paced;

    const from = t0 + WARM_UP_MS;
    const to = from + MEASURE_MS;
    const rate = (acks: number[]) => (acks.filter((t) => t >= from && t < to).length * 1000) / MEASURE_MS;
    const aRate = rate(aAcks);
    const bRate = rate(bAcks);
    const throttled = (await metric(/^runnel_quota_throttled_total\{kind="produceRecords"\} (\d+)/m)) - throttledBefore;
    console.log(`quota ${PRODUCE_RECORDS_PER_SEC} records/s: A (flooding) ${aRate.toFixed(0)} acked records/s, B (paced ${B_RECORDS_PER_SEC}/s) ${bRate.toFixed(0)} records/s, over ${MEASURE_MS} ms after ${WARM_UP_MS} ms; A acked ${aAcks.length} in all; produceRecords throttles ${throttled}`);
    assert.deepEqual(errors, [], 'no record failed');
    assert.ok(aRate <= PRODUCE_RECORDS_PER_SEC * 1.15, `A's acked rate ${aRate}/s is at most the quota + 15 %`);
    assert.ok(aRate >= PRODUCE_RECORDS_PER_SEC * 0.5, `A's acked rate ${aRate}/s is at least half the quota (throttled, not starved)`);
    assert.ok(Math.abs(bRate - B_RECORDS_PER_SEC) <= B_RECORDS_PER_SEC * 0.1, `B's rate ${bRate}/s is within 10 % of ${B_RECORDS_PER_SEC}/s`);
    assert.ok(throttled > 0, 'runnel_quota_throttled_total{kind="produceRecords"} counted the throttles');
  } finally {
    running = false;
    await a.close();
    await b.close();
  }
}));

test('HTTP produce over the quota: 429 THROTTLING_QUOTA_EXCEEDED with Retry-After and retryAfterMs; the same request passes after that', { timeout: 60_000 }, () => withLog(async () => {
  const token = await issuer.hs256('quota-http', { publish: ['quota.http'] });
  const post = (records: number) => fetch(`${broker.url}/v1/topics/quota.http/records`, {
    method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify({ records: Array.from({ length: records }, (_, i) => ({ value: i })) }),
  });
  // One burst's worth empties the bucket; of two requests of 3/4 of a second's worth each, one can be
  // held within maxThrottleDelayMs (1 s) and the other cannot: it is answered at once with the hint.
  const drain = await post(PRODUCE_RECORDS_PER_SEC);
  assert.equal(drain.status, 200, await drain.text());
  const settled: number[] = [];
  const answers = await Promise.all([post(PRODUCE_RECORDS_PER_SEC * 0.75), post(PRODUCE_RECORDS_PER_SEC * 0.75)].map((p) => p.then((r) => { settled.push(r.status); return r; })));
  assert.deepEqual(answers.map((r) => r.status).sort(), [200, 429], 'one held and written, one refused');
  assert.deepEqual(settled, [429, 200], 'the refusal is answered at once, not after being held (the held one takes ~750 ms)');
  const refused = answers.find((r) => r.status === 429)!;
  const body = await refused.json() as { error: { code: string; details?: { retryAfterMs?: number } } };
  assert.equal(body.error.code, 'THROTTLING_QUOTA_EXCEEDED');
  const retryAfterMs = body.error.details?.retryAfterMs ?? 0;
  assert.ok(retryAfterMs > 0 && retryAfterMs <= 3000, `retryAfterMs ${retryAfterMs}`);
  assert.equal(refused.headers.get('retry-after'), String(Math.ceil(retryAfterMs / 1000)), 'Retry-After is retryAfterMs in whole seconds, rounded up');
  console.log(`HTTP: refused 429 with retryAfterMs ${retryAfterMs}, Retry-After ${refused.headers.get('retry-after')}`);
  await sleep(retryAfterMs);
  const retried = await post(PRODUCE_RECORDS_PER_SEC * 0.75);
  assert.equal(retried.status, 200, `after retryAfterMs the request passes: ${await retried.text()}`);
}));

test('HTTP produce over the quota: a request refused 429 wrote none of its records', {
  timeout: 60_000,
}, () => withLog(async () => {
  const token = await issuer.hs256('quota-http2', { publish: ['quota.http2'] });
  const post = (perPartition: number, partitions: number[]) => fetch(`${broker.url}/v1/topics/quota.http2/records`, {
    method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify({ records: partitions.flatMap((partition) => Array.from({ length: perPartition }, (_, i) => ({ value: i, partition }))) }),
  });
  const highWatermarks = async () => {
    const described = await (await adminRequest('GET', '/v1/topics/quota.http2')).json() as { partitions: { partition: number; highWatermark: number }[] };
    return described.partitions.map((p) => p.highWatermark);
  };
  assert.equal((await post(PRODUCE_RECORDS_PER_SEC, [0])).status, 200, 'empties the bucket');
  // 1,400 records to each of two partitions, reserved as one: larger than the burst, it waits for a full
  // bucket (1 s, within maxThrottleDelayMs) and leaves a debt; the same request right after would wait
  // ~1.4 s, past maxThrottleDelayMs: refused whole.
  assert.equal((await post(1400, [0, 1])).status, 200, 'held, then written whole');
  const before = await highWatermarks();
  const refused = await post(1400, [0, 1]);
  assert.equal(refused.status, 429, 'the request as a whole is over what maxThrottleDelayMs allows');
  await sleep(1500);
  assert.deepEqual(await highWatermarks(), before, 'nothing of the refused request was written');
}));

test(`fetchBytes ${FETCH_BYTES_PER_SEC / 1024} KiB/s per subject: a WebSocket consumer's catch-up runs at about the quota, without errors, every record once`, { timeout: 90_000 }, () => withLog(async () => {
  const RECORDS = 768;
  const VALUE = 'x'.repeat(2000);
  const loader = client(await issuer.hs256('quota-loader', { publish: ['quota.fetch'] }));
  try {
    await Promise.all(Array.from({ length: RECORDS }, (_, n) => loader.producer.send('quota.fetch', { n, pad: VALUE })));
  } finally {
    await loader.close();
  }
  const throttledBefore = await metric(/^runnel_quota_throttled_total\{kind="fetchBytes"\} (\d+)/m);
  // The credit window is max(creditWindowBytes, 2 × maxBatchBytes) = 128 KiB; grants of 64 KiB take 250 ms of quota each.
  const consumer = client(await issuer.hs256('quota-fetch', { subscribe: ['quota.fetch'] }), { creditWindowBytes: 64 * 1024 });
  const errors: unknown[] = [];
  // NB: the SDK inits a producer on every connection, so a subscribe-only token reports CLUSTER_AUTHORIZATION_FAILED
  // 'initProducer failed' once per connect (client-sdk/src/producer.ts); that is not the quota's doing.
  consumer.on('error', (e) => { if (!(e.errorName === 'CLUSTER_AUTHORIZATION_FAILED' && e.message === 'initProducer failed')) errors.push(e); });
  const arrivals: { at: number; bytes: number; offset: number }[] = [];
  try {
    consumer.subscribe('quota.fetch', (r) => {
      arrivals.push({ at: performance.now(), bytes: JSON.stringify(r.value).length, offset: r.offset });
    }, { from: 'earliest' });
    const deadline = Date.now() + 60_000;
    while (arrivals.length < RECORDS && Date.now() < deadline) await sleep(20);
    assert.equal(arrivals.length, RECORDS, 'every record arrived');
    assert.deepEqual(arrivals.map((r) => r.offset), Array.from({ length: RECORDS }, (_, i) => i), 'in order, once each');
    assert.deepEqual(errors, [], 'no error');

    // The initial credit (one window) and the burst are free; measure from a quarter of the bytes to the end.
    // Records come in clumps, one credit grant's worth every ~0.5 s: the bytes of the clump the measurement
    // starts in arrived at its start (time zero), so only later clumps count.
    const total = arrivals.reduce((s, r) => s + r.bytes, 0);
    let sum = 0;
    const start = arrivals.find((r) => (sum += r.bytes) >= total / 4)!;
    const measured = arrivals.filter((r) => r.at > start.at + 50).reduce((s, r) => s + r.bytes, 0);
    const seconds = (arrivals[arrivals.length - 1].at - start.at) / 1000;
    const rate = measured / seconds;
    const throttled = (await metric(/^runnel_quota_throttled_total\{kind="fetchBytes"\} (\d+)/m)) - throttledBefore;
    console.log(`fetch quota ${FETCH_BYTES_PER_SEC} B/s: catch-up of ${total} value bytes at ${rate.toFixed(0)} B/s (${(rate / FETCH_BYTES_PER_SEC).toFixed(2)} × quota) over ${seconds.toFixed(2)} s; fetchBytes throttles ${throttled}`);
    assert.ok(rate <= FETCH_BYTES_PER_SEC * 1.15, `catch-up ${rate} B/s is at most the quota + 15 %`);
    assert.ok(rate >= FETCH_BYTES_PER_SEC * 0.5, `catch-up ${rate} B/s is at least half the quota`);
    assert.ok(throttled > 0, 'credit grants were withheld (runnel_quota_throttled_total{kind="fetchBytes"})');
  } finally {
    await consumer.close();
  }
}));

/** A raw protocol client of `subject` (subscribe grant on quota.fetch) counting the bytes of the records frames it gets. */
async function rawConsumer(subject: string): Promise<{ c: TestClient; received: () => number }> {
  const c = await TestClient.connect(broker.wsUrl, { hello: false });
  c.decodeRecords = false;
  let bytes = 0;
  c.ws.on('message', (data: Buffer) => { if (data[0] === FrameKind.records) bytes += data.length; });
  c.send({ type: 'hello', minVersion: PROTOCOL_VERSION, maxVersion: PROTOCOL_VERSION, clientId: subject, token: await issuer.hs256(subject, { subscribe: ['quota.fetch'] }) });
  const ok = await c.waitFor((f) => f.type === 'helloOk' || f.type === 'error');
  assert.equal(ok.type, 'helloOk');
  return { c, received: () => bytes };
}

/** What a fresh subject may receive in `ms` (plus one batch of slack for the frame in flight). */
const allowedBytes = (ms: number) => FETCH_BURST_BYTES + (FETCH_BYTES_PER_SEC * 1.15 * ms) / 1000 + MAX_BATCH_BYTES;

test('fetchBytes over the raw protocol: one huge credit grant is withheld until paid, it does not buy its bytes early', { timeout: 30_000 }, () => withLog(async () => {
  const { c, received } = await rawConsumer('quota-grant');
  try {
    assert.equal((await c.subscribe('quota.fetch', 0, { kind: 'earliest' }, 0)).errorCode, 0);
    c.send({ type: 'credit', topic: 'quota.fetch', partition: 0, bytes: FETCH_BURST_BYTES }); // within the burst: granted now
    c.send({ type: 'credit', topic: 'quota.fetch', partition: 0, bytes: 8 * 1024 * 1024 }); // 32 s of quota
    await sleep(2000);
    console.log(`raw credit 64 KiB + 8 MiB: ${received()} bytes in 2 s (allowed ${allowedBytes(2000)})`);
    assert.ok(received() > 0, 'the grant within the burst was served');
    assert.ok(received() <= allowedBytes(2000), `${received()} bytes in 2 s`);
  } finally {
    c.close();
  }
}));

test('fetchBytes over the raw protocol: the initial credit of a subscribe is charged', {
  timeout: 30_000,
  }, () => withLog(async () => {
  const { c, received } = await rawConsumer('quota-subscribe-credit');
  try {
    assert.equal((await c.subscribe('quota.fetch', 0, { kind: 'earliest' }, 16 * 1024 * 1024)).errorCode, 0);
    await sleep(1000);
    console.log(`raw subscribe with 16 MiB credit: ${received()} bytes in 1 s (allowed ${allowedBytes(1000)})`);
    assert.ok(received() <= allowedBytes(1000), `${received()} bytes in 1 s`);
  } finally {
    c.close();
  }
}));

test('fetchBytes over the raw protocol: a grant that joins a withheld one is charged', {
  timeout: 30_000,
  }, () => withLog(async () => {
  const { c, received } = await rawConsumer('quota-joined-credit');
  try {
    assert.equal((await c.subscribe('quota.fetch', 0, { kind: 'earliest' }, 0)).errorCode, 0);
    c.send({ type: 'credit', topic: 'quota.fetch', partition: 0, bytes: FETCH_BURST_BYTES }); // granted now
    c.send({ type: 'credit', topic: 'quota.fetch', partition: 0, bytes: FETCH_BURST_BYTES }); // withheld 250 ms
    c.send({ type: 'credit', topic: 'quota.fetch', partition: 0, bytes: 8 * 1024 * 1024 }); // joins it
    await sleep(1000);
    console.log(`raw credit 64 KiB + 64 KiB + 8 MiB: ${received()} bytes in 1 s (allowed ${allowedBytes(1000)})`);
    assert.ok(received() <= allowedBytes(1000), `${received()} bytes in 1 s`);
  } finally {
    c.close();
  }
}));

const adminRequest = (method: string, path: string, body?: unknown) => fetch(`${broker.url}${path}`, {
  method, headers: { 'content-type': 'application/json', authorization: `Bearer ${adminToken}` }, ...(body === undefined ? {} : { body: JSON.stringify(body) }),
});

test(`topics per subject: the creation past maxTopicsPerSubject (${MAX_TOPICS_PER_SUBJECT}) is refused 429 LIMIT_EXCEEDED; a deleted topic frees its unit`, { timeout: 30_000 }, () => withLog(async () => {
  assert.equal((await adminRequest('POST', '/v1/topics', { name: 'quota.t6', partitions: 1, replicationFactor: 1 })).status, 201, 'the 6th topic of the admin');
  const refused = await adminRequest('POST', '/v1/topics', { name: 'quota.t7', partitions: 1, replicationFactor: 1 });
  assert.equal(refused.status, 429);
  const body = await refused.json() as { error: { code: string; message: string } };
  assert.equal(body.error.code, 'LIMIT_EXCEEDED');
  assert.match(body.error.message, /topics per subject quota reached \(6\)/);
  assert.equal(refused.headers.get('retry-after'), null, 'a count has no time to wait for');
  assert.ok((await adminRequest('DELETE', '/v1/topics/quota.t6')).status < 300, 'delete');
  assert.equal((await adminRequest('POST', '/v1/topics', { name: 'quota.t7', partitions: 1, replicationFactor: 1 })).status, 201, 'the deleted topic freed its unit');
}));

test('topics per subject: a WebSocket produce to a missing topic does not create it without the createTopic grant', {
  timeout: 30_000,
  }, () => withLog(async () => {
  const c = await TestClient.connect(broker.wsUrl, { hello: false });
  try {
    c.send({ type: 'hello', minVersion: PROTOCOL_VERSION, maxVersion: PROTOCOL_VERSION, clientId: 'auto', token: await issuer.hs256('quota-auto', { publish: ['quota.auto.*'] }) });
    assert.equal((await c.waitFor((f) => f.type === 'helloOk' || f.type === 'error')).type, 'helloOk');
    const ack = await c.produce('quota.auto.made-by-produce', 0, makeBatch(['v']));
    const topics = await (await adminRequest('GET', '/v1/topics')).json() as { topics: { name: string }[] };
    assert.ok(!topics.topics.some((t) => t.name === 'quota.auto.made-by-produce'), 'the topic was not created');
    assert.notEqual(ack.errorCode, 0, 'the produce was refused');
  } finally {
    c.close();
  }
}));
