/**
 * Issue 14 on issue 12's cluster: a Durable Stream's state (content type,
 * expiry, closed flag, fork parent, Stream-Seq, soft-delete) lives in etcd,
 * so every broker serves every stream URL identically. Real etcd and three
 * broker processes (LocalCluster), streams of replication factor 3:
 * - created through broker 0, a stream answers HEAD/GET/append/close on
 *   brokers 1 and 2, re-PUT is 200 (same config) or 409 (another) anywhere;
 * - racing PUTs of different configurations through two brokers: exactly one
 *   201, the other 409, and every broker then reports the winner's type;
 * - Stream-Seq appends racing through two brokers: exactly one accepted;
 * - a close through broker 0 ends a long-poll waiting on broker 1 (before its
 *   timeout, with Stream-Closed);
 * - a fork created through broker 1 of a stream of broker 0 reads through 2;
 * - an absolute expiry is the same on every broker;
 * - delete through 1, re-create through 2: the old offsets are 410 on all;
 * - SIGKILL of the creating broker: the others serve the stream with every
 *   acknowledged append and accept more.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { LocalCluster, type BrokerNode } from '../../server/src/cluster/local-cluster.ts';
import { clusterLog, waitFullIsr } from '../e2e/harness/cluster-probes.ts';
import { waitFor } from '../e2e/harness/wait-for.ts';

/** The endpoint's long-poll wait before a 204 (endpoint.ts default): a close must end it sooner. */
const LONG_POLL_TIMEOUT_MS = 10_000;

let cluster: LocalCluster | undefined;
before(async () => {
  cluster = await LocalCluster.start({
    nodes: 3, minInsyncReplicas: 2,
    brokerLimits: { replicaLagTimeMs: 2_000, brokerLeaseTtlMs: 2_000 },
    limits: { clusterFormedTimeoutMs: 30_000 },
  });
});
after(async () => {
  await cluster?.stop();
});

const streamUrl = (b: BrokerNode, path: string) => `${b.url}/v1/stream/${path}`;

async function call(url: string, init: RequestInit = {}): Promise<{ status: number; headers: Headers; body: string }> {
  const res = await fetch(url, init);
  return { status: res.status, headers: res.headers, body: await res.text() };
}

const put = (url: string, headers: Record<string, string>, body?: string) => call(url, { method: 'PUT', headers, ...(body !== undefined ? { body } : {}) });
const post = (url: string, headers: Record<string, string>, body?: string) => call(url, { method: 'POST', headers, ...(body !== undefined ? { body } : {}) });

/** Waits until every broker's replica has `topic` fully in sync, so a kill cannot take the only copy. */
async function synced(topic: string): Promise<void> {
  await waitFullIsr(cluster!, topic, 3);
}

test('a stream created through one broker is served by every broker: HEAD, GET, append, re-PUT, close', { timeout: 120_000 }, async () => {
  const [a, b, c] = cluster!.brokers;
  const created = await put(streamUrl(a, 'shared/one'), { 'content-type': 'text/plain' }, 'hello ');
  assert.equal(created.status, 201);
  for (const via of [b, c]) {
    const head = await call(streamUrl(via, 'shared/one'), { method: 'HEAD' });
    assert.equal(head.status, 200, `HEAD through broker ${via.id}`);
    assert.equal(head.headers.get('content-type'), 'text/plain');
    assert.equal(head.headers.get('runnel-topic'), created.headers.get('runnel-topic'), 'the same stream, not a second one');
  }
  assert.equal((await put(streamUrl(b, 'shared/one'), { 'content-type': 'text/plain' })).status, 200, 'the same configuration again: 200');
  assert.equal((await put(streamUrl(c, 'shared/one'), { 'content-type': 'application/json' })).status, 409, 'another configuration: 409');
  assert.equal((await post(streamUrl(b, 'shared/one'), { 'content-type': 'text/plain' }, 'world')).status, 204);
  const read = await call(`${streamUrl(c, 'shared/one')}?offset=-1`);
  assert.equal(read.status, 200);
  assert.equal(read.body, 'hello world');
  const closed = await post(streamUrl(c, 'shared/one'), { 'stream-closed': 'true' });
  assert.equal(closed.status, 204);
  for (const via of [a, b, c]) {
    const head = await waitFor(`broker ${via.id} reports the close`, async () => {
      const h = await call(streamUrl(via, 'shared/one'), { method: 'HEAD' });
      return h.headers.get('stream-closed') === 'true' ? h : false;
    }, { timeoutMs: 10_000, context: () => clusterLog(cluster!) });
    assert.equal(head.status, 200);
    assert.equal((await post(streamUrl(via, 'shared/one'), { 'content-type': 'text/plain' }, 'late')).status, 409, `an append through ${via.id} after the close`);
  }
});

test('racing PUTs of different configurations through two brokers: exactly one wins', { timeout: 120_000 }, async () => {
  const [a, b, c] = cluster!.brokers;
  for (let i = 0; i < 6; i++) {
    const path = `race/put-${i}`;
    const [ra, rb] = await Promise.all([
      put(streamUrl(a, path), { 'content-type': 'text/plain' }),
      put(streamUrl(b, path), { 'content-type': 'application/json' }),
    ]);
    const statuses = [ra.status, rb.status].sort();
    assert.deepEqual(statuses, [201, 409], `${path}: one create, one conflict (got ${ra.status} through ${a.id}, ${rb.status} through ${b.id})`);
    const winner = ra.status === 201 ? 'text/plain' : 'application/json';
    for (const via of [a, b, c]) {
      const head = await call(streamUrl(via, path), { method: 'HEAD' });
      assert.equal(head.headers.get('content-type'), winner, `${path} through broker ${via.id}`);
    }
  }
});

test('Stream-Seq appends racing through two brokers: exactly one is written', { timeout: 120_000 }, async () => {
  const [a, b] = cluster!.brokers;
  const url = (via: BrokerNode) => streamUrl(via, 'race/seq');
  assert.equal((await put(url(a), { 'content-type': 'text/plain' })).status, 201);
  for (let i = 0; i < 6; i++) {
    const seq = `s${String(i).padStart(4, '0')}`;
    const answers = await Promise.all([a, b].map((via) => post(url(via), { 'content-type': 'text/plain', 'stream-seq': seq }, `${seq}@${via.id};`)));
    assert.deepEqual(answers.map((r) => r.status).sort(), [204, 409], `Stream-Seq ${seq}: one written, one conflict`);
  }
  const body = (await call(`${url(b)}?offset=-1`)).body;
  assert.equal(body.split(';').filter(Boolean).length, 6, `one append per Stream-Seq: ${body}`);
});

test('a close through one broker ends a long-poll waiting on another', { timeout: 60_000 }, async () => {
  const [a, b] = cluster!.brokers;
  const created = await put(streamUrl(a, 'tail/closing'), { 'content-type': 'text/plain' }, 'x');
  const tail = created.headers.get('stream-next-offset')!;
  await waitFor('broker 1 serves the stream', async () => (await call(streamUrl(b, 'tail/closing'), { method: 'HEAD' })).status === 200, { timeoutMs: 10_000 });
  const started = Date.now();
  const poll = call(`${streamUrl(b, 'tail/closing')}?offset=${tail}&live=long-poll`);
  await new Promise((r) => setTimeout(r, 500));
  assert.equal((await post(streamUrl(a, 'tail/closing'), { 'stream-closed': 'true' })).status, 204);
  const answer = await poll;
  const elapsedMs = Date.now() - started;
  assert.equal(answer.status, 204);
  assert.equal(answer.headers.get('stream-closed'), 'true', 'the long-poll learned of the close');
  assert.ok(elapsedMs < LONG_POLL_TIMEOUT_MS, `the long-poll ended by the close, not its ${LONG_POLL_TIMEOUT_MS} ms timeout (${elapsedMs} ms)`);
});

test('a fork through another broker reads its source\'s prefix through a third; an absolute expiry is the same everywhere', { timeout: 60_000 }, async () => {
  const [a, b, c] = cluster!.brokers;
  const src = await put(streamUrl(a, 'fork/src'), { 'content-type': 'text/plain' }, 'abc');
  const forkOffset = src.headers.get('stream-next-offset')!;
  await post(streamUrl(a, 'fork/src'), { 'content-type': 'text/plain' }, 'NOT-IN-FORK');
  const fork = await put(streamUrl(b, 'fork/child'), { 'content-type': 'text/plain', 'stream-forked-from': '/v1/stream/fork/src', 'stream-fork-offset': forkOffset });
  assert.equal(fork.status, 201, fork.body);
  assert.equal((await post(streamUrl(c, 'fork/child'), { 'content-type': 'text/plain' }, 'def')).status, 204);
  assert.equal((await call(`${streamUrl(c, 'fork/child')}?offset=-1`)).body, 'abcdef');
  assert.equal((await call(streamUrl(c, 'fork/src'), { method: 'DELETE' })).status, 204, 'the source goes while the fork reads it (soft delete)');
  for (const via of [a, b, c]) assert.equal((await call(`${streamUrl(via, 'fork/src')}?offset=-1`)).status, 410, `the soft-deleted source through ${via.id}`);
  assert.equal((await call(`${streamUrl(a, 'fork/child')}?offset=-1`)).body, 'abcdef', 'the fork still reads the prefix');

  const expiresAt = new Date(Date.now() + 2_000).toISOString();
  assert.equal((await put(streamUrl(a, 'ttl/abs'), { 'content-type': 'text/plain', 'stream-expires-at': expiresAt })).status, 201);
  await waitFor('every broker serves the stream', async () => (await Promise.all([b, c].map((v) => call(streamUrl(v, 'ttl/abs'), { method: 'HEAD' })))).every((h) => h.status === 200), { timeoutMs: 1_500 });
  await new Promise((r) => setTimeout(r, Math.max(0, Date.parse(expiresAt) - Date.now() + 100)));
  for (const via of [b, c, a]) assert.equal((await call(streamUrl(via, 'ttl/abs'), { method: 'HEAD' })).status, 404, `expired through ${via.id}`);
});

test('delete through one broker, re-create through another: the old offsets are 410 on every broker', { timeout: 60_000 }, async () => {
  const [a, b, c] = cluster!.brokers;
  const first = await put(streamUrl(a, 'recreate/s'), { 'content-type': 'text/plain' }, 'old data');
  const oldOffset = first.headers.get('stream-next-offset')!;
  assert.equal((await call(streamUrl(b, 'recreate/s'), { method: 'DELETE' })).status, 204);
  const second = await put(streamUrl(c, 'recreate/s'), { 'content-type': 'text/plain' }, 'new');
  assert.equal(second.status, 201, second.body);
  assert.notEqual(second.headers.get('runnel-topic'), first.headers.get('runnel-topic'));
  for (const via of [a, b, c]) {
    const old = await waitFor(`broker ${via.id} serves the new stream`, async () => {
      const r = await call(`${streamUrl(via, 'recreate/s')}?offset=${oldOffset}`);
      return r.status === 410 ? r : false;
    }, { timeoutMs: 10_000, context: () => clusterLog(cluster!) });
    assert.equal(old.status, 410, `an offset of the deleted stream through ${via.id}`);
    assert.equal((await call(`${streamUrl(via, 'recreate/s')}?offset=-1`)).body, 'new');
  }
});

test('SIGKILL of the broker that created a stream: the others serve it with every acknowledged append', { timeout: 180_000 }, async () => {
  const c0 = cluster!;
  const creator = c0.brokers[0];
  const created = await put(streamUrl(creator, 'kill/s'), { 'content-type': 'application/json' }, '[{"n":0}]');
  assert.equal(created.status, 201);
  const topic = created.headers.get('runnel-topic')!;
  await synced(topic);
  const acked: number[] = [0];
  for (let n = 1; n <= 20; n++) {
    const via = c0.brokers[n % 3];
    const r = await post(streamUrl(via, 'kill/s'), { 'content-type': 'application/json' }, JSON.stringify({ n }));
    assert.equal(r.status, 204, `append ${n} through ${via.id}`);
    acked.push(n);
  }
  await creator.kill('SIGKILL');
  const others = c0.brokers.filter((b) => b !== creator);
  for (const via of others) {
    const messages = await waitFor(`broker ${via.id} serves every acknowledged append`, async () => {
      const r = await call(`${streamUrl(via, 'kill/s')}?offset=-1`);
      if (r.status !== 200) return false;
      const ns = (JSON.parse(r.body) as { n: number }[]).map((m) => m.n);
      return ns.length >= acked.length ? ns : false;
    }, { timeoutMs: 30_000, context: () => clusterLog(c0) });
    assert.deepEqual(messages, acked, `broker ${via.id}: every acknowledged append once, in order`);
  }
  // Idempotent, so a retry during the election can never write it twice.
  const more = await waitFor('an append after the kill', async () => {
    const r = await post(streamUrl(others[0], 'kill/s'), { 'content-type': 'application/json', 'producer-id': 'after-kill', 'producer-epoch': '0', 'producer-seq': '0' }, '{"n":21}');
    return r.status === 200 || r.status === 204 ? r : false;
  }, { timeoutMs: 30_000, context: () => clusterLog(c0) });
  assert.equal(more.headers.get('producer-seq'), '0');
  const closed = await post(streamUrl(others[1], 'kill/s'), { 'stream-closed': 'true' });
  assert.equal(closed.status, 204);
  const tail = await call(`${streamUrl(others[0], 'kill/s')}?offset=-1`);
  assert.deepEqual((JSON.parse(tail.body) as { n: number }[]).map((m) => m.n), [...acked, 21]);
  assert.equal(tail.headers.get('stream-closed'), 'true');
});
