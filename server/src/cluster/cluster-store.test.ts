import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Etcd3 } from 'etcd3';
import { metadataStoreContract } from '../metadata/metadata-store.contract.ts';
import type { TopicInfo } from '../metadata/topic-info.ts';
import type { BrokerEndpoint, VersionedLeadership } from './cluster-state.ts';
import { ClusterStore, type ClusterListener } from './cluster-store.ts';
import { EtcdProcess } from './etcd-process.ts';

let etcd: EtcdProcess;
let raw: Etcd3;
const stores: ClusterStore[] = [];

before(async () => {
  etcd = await EtcdProcess.start();
  raw = new Etcd3({ hosts: etcd.url });
});

after(async () => {
  await Promise.all(stores.map((s) => s.close()));
  raw.close();
  await etcd.dispose();
});

const freshPrefix = () => `/t-${randomBytes(6).toString('hex')}`;

const broker = (id: number): BrokerEndpoint => ({
  id, clientUrl: `http://127.0.0.1:${9000 + id}`, replicationHost: '127.0.0.1', replicationPort: 9500 + id, startedAtMs: 1, leaseId: '0',
});

async function registerBrokers(prefix: string, ids: number[]): Promise<void> {
  for (const id of ids) await raw.put(`${prefix}/brokers/${id}`).value(JSON.stringify(broker(id)));
}

async function open(prefix: string, limits: Record<string, number> = {}): Promise<ClusterStore> {
  const store = await ClusterStore.open({ endpoints: [etcd.url], prefix, limits });
  stores.push(store);
  return store;
}

const topic = (name: string, partitions = 3, replicationFactor = 1, topicId = `${name}-id`): TopicInfo => ({
  name, topicId, partitions, replicationFactor, retentionMs: 1000, retentionBytes: -1, createdAtMs: 1,
});

/** Resolves when `predicate` holds, polling the store's cache after every change it reports. */
function until(store: ClusterStore, predicate: () => boolean, what: string, timeoutMs = 20_000): Promise<void> {
  if (predicate()) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const check = () => {
      if (!predicate()) return;
      clearTimeout(timer);
      unsubscribe();
      resolve();
    };
    const listener: ClusterListener = {
      topicsChanged: check, leadershipChanged: check, leadershipRemoved: check, brokersChanged: check, controllerChanged: check, resynced: check,
    };
    const unsubscribe = store.watch(listener);
    const timer = setTimeout(() => {
      unsubscribe();
      reject(new Error(`timed out waiting for ${what}`));
    }, timeoutMs);
  });
}

metadataStoreContract('ClusterStore (etcd)', async () => {
  const prefix = freshPrefix();
  await registerBrokers(prefix, [1]);
  return { store: await open(prefix), reopen: () => open(prefix) };
});

test('ClusterStore: a topic and all its partition keys are created in one txn, replicas spread over the live brokers', { timeout: 30_000 }, async () => {
  const prefix = freshPrefix();
  await registerBrokers(prefix, [1, 2, 3]);
  const store = await open(prefix);
  await store.createTopic(topic('orders', 6, 2));
  const leaderships = (await store.readLeaderships()).sort((a, b) => a.partition - b.partition);
  assert.equal(leaderships.length, 6);
  for (const l of leaderships) {
    assert.equal(l.topicId, 'orders-id');
    assert.equal(l.replicas.length, 2);
    assert.equal(new Set(l.replicas).size, 2);
    assert.equal(l.leader, l.replicas[0]);
    assert.equal(l.leaderEpoch, 0);
    assert.deepEqual(l.isr, l.replicas);
    assert.match(l.revision, /^[0-9]+$/);
  }
  assert.deepEqual(new Set(leaderships.map((l) => l.leader)), new Set([1, 2, 3]), 'leaders round-robin over the brokers');
  assert.equal(new Set(leaderships.map((l) => l.revision)).size, 1, 'one transaction: one revision');
  await assert.rejects(store.createTopic(topic('wide', 1, 4)), { errorName: 'INVALID_REPLICATION_FACTOR' } as object);
  await assert.rejects(store.createTopic(topic('huge', 128, 1)), { errorName: 'INVALID_PARTITIONS' } as object);
  assert.deepEqual((await store.load()).map((t) => t.name), ['orders']);
  await store.deleteTopic('orders', 'orders-id');
  assert.deepEqual(await store.readLeaderships(), [], 'delete removes the partition keys with the topic');
});

test('ClusterStore: two writers CAS the same leadership: exactly one wins, the loser is fenced', { timeout: 30_000 }, async () => {
  const prefix = freshPrefix();
  await registerBrokers(prefix, [1, 2, 3]);
  const a = await open(prefix);
  const b = await open(prefix);
  await a.createTopicWithAssignment(topic('t', 1, 3), [[1, 2, 3]]);
  const expected = (await a.readLeadership('t-id', 0))!;
  const [ra, rb] = await Promise.all([
    a.casLeadership(expected, { ...expected, leader: 2, leaderEpoch: 1, isr: [2, 3] }),
    b.casLeadership(expected, { ...expected, leader: 3, leaderEpoch: 1, isr: [3] }),
  ]);
  assert.equal([ra, rb].filter((r) => r.ok).length, 1);
  assert.deepEqual([ra, rb].find((r) => !r.ok), { ok: false, reason: 'fenced' });
  const winner = [ra, rb].find((r) => r.ok)!;
  assert.ok(winner.ok);
  assert.deepEqual(await a.readLeadership('t-id', 0), winner.leadership, 'the winner reports exactly what is stored, with its revision');
});

test('ClusterStore: alterIsr succeeds on the current revision and is fenced after an epoch change', { timeout: 30_000 }, async () => {
  const prefix = freshPrefix();
  await registerBrokers(prefix, [1, 2, 3]);
  const store = await open(prefix);
  await store.createTopicWithAssignment(topic('t', 1, 3), [[1, 2, 3]]);
  const initial = (await store.readLeadership('t-id', 0))!;
  const shrunk = await store.alterIsr(initial, [1, 2]);
  assert.ok(shrunk.ok);
  assert.deepEqual(shrunk.leadership.isr, [1, 2]);
  assert.equal(shrunk.leadership.leaderEpoch, 0);
  assert.notEqual(shrunk.leadership.revision, initial.revision);
  assert.deepEqual(await store.alterIsr(initial, [1]), { ok: false, reason: 'fenced' }, 'a stale revision is fenced');
  // The controller elects 2 (epoch 1): the old leader's next ISR change, made from what it saw, is fenced.
  const elected = await store.casLeadership(shrunk.leadership, { ...shrunk.leadership, leader: 2, leaderEpoch: 1, isr: [2] });
  assert.ok(elected.ok);
  assert.deepEqual(await store.alterIsr(shrunk.leadership, [1, 2, 3]), { ok: false, reason: 'fenced' });
  assert.deepEqual((await store.readLeadership('t-id', 0))!.isr, [2]);
  await assert.rejects(store.alterIsr(elected.leadership, [1, 3]), /must be in the ISR/, 'a leader never drops itself');
});

test('ClusterStore: the watch delivers topic, leadership and broker changes in revision order', { timeout: 30_000 }, async () => {
  const prefix = freshPrefix();
  await registerBrokers(prefix, [1, 2]);
  const store = await open(prefix);
  const writer = await open(prefix);
  const seen: string[] = [];
  store.watch({
    topicsChanged: (topics) => seen.push(`topics ${topics.map((t) => t.name).join(',')}`),
    leadershipChanged: (l) => seen.push(`leadership ${l.partition} leader ${l.leader} epoch ${l.leaderEpoch}`),
    leadershipRemoved: (topicId, p) => seen.push(`removed ${p}`),
    brokersChanged: (brokers) => seen.push(`brokers ${brokers.map((b) => b.id).join(',')}`),
  });
  assert.deepEqual(store.brokers().map((b) => b.id), [1, 2], 'the cache starts with what etcd holds');
  await writer.createTopicWithAssignment(topic('t', 2, 2), [[1, 2], [2, 1]]);
  const p0 = (await writer.readLeadership('t-id', 0))!;
  const moved = await writer.casLeadership(p0, { ...p0, leader: 2, leaderEpoch: 1, isr: [2] });
  assert.ok(moved.ok);
  await raw.put(`${prefix}/brokers/3`).value(JSON.stringify(broker(3)));
  await raw.delete().key(`${prefix}/brokers/1`);
  await writer.deleteTopic('t', 't-id');
  await until(store, () => seen.length >= 9, 'nine notices');
  assert.deepEqual(seen, [
    'topics t', 'leadership 0 leader 1 epoch 0', 'leadership 1 leader 2 epoch 0',
    'leadership 0 leader 2 epoch 1',
    'brokers 1,2,3', 'brokers 2,3',
    'topics ', 'removed 0', 'removed 1',
  ]);
  assert.equal(store.topic('t'), undefined);
  assert.deepEqual(store.leaderships(), []);
});

test('ClusterStore: after etcd is killed and restarted the watch resyncs and keeps delivering', { timeout: 60_000 }, async () => {
  const prefix = freshPrefix();
  await registerBrokers(prefix, [1, 2]);
  const store = await open(prefix, { etcdRequestTimeoutMs: 1000, connectivityProbeIntervalMs: 100 });
  let resyncs = 0;
  const connectivity: boolean[] = [];
  store.watch({ resynced: () => resyncs++, connectivityChanged: (c) => connectivity.push(c) });
  await store.createTopicWithAssignment(topic('t', 1, 2), [[1, 2]]);
  await until(store, () => store.leadership('t-id', 0) !== undefined, 'the topic in the cache');
  await etcd.kill('SIGKILL');
  await assert.rejects(store.load(), { errorName: 'CLUSTER_UNAVAILABLE' } as object);
  assert.equal(store.connected, false);
  await etcd.restart();
  // A write right after the restart lands before or after the reload: either way it is seen exactly once.
  const p0 = (await waitFor(() => store.readLeadership('t-id', 0)))!;
  const moved = await store.casLeadership(p0, { ...p0, leader: 2, leaderEpoch: 1, isr: [2] });
  assert.ok(moved.ok);
  await until(store, () => resyncs >= 1 && store.leadership('t-id', 0)?.revision === moved.leadership.revision, 'the resync and the write');
  await raw.put(`${prefix}/brokers/3`).value(JSON.stringify(broker(3)));
  await until(store, () => store.brokers().length === 3, 'a change after the resync');
  assert.deepEqual(store.leadership('t-id', 0), moved.leadership);
  assert.deepEqual(connectivity.slice(0, 2), [false, true]);
  assert.equal(store.connected, true);
});

/** Retries `op` while etcd is still coming back (CLUSTER_UNAVAILABLE). */
async function waitFor<T>(op: () => Promise<T>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await op();
    } catch (e) {
      if ((e as { errorName?: string }).errorName !== 'CLUSTER_UNAVAILABLE' || Date.now() > deadline) throw e;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

test('ClusterStore: a paused etcd fails operations with CLUSTER_UNAVAILABLE in bounded time; they work again after SIGCONT', { timeout: 60_000 }, async () => {
  const prefix = freshPrefix();
  await registerBrokers(prefix, [1, 2]);
  const timeoutMs = 500;
  const store = await open(prefix, { etcdRequestTimeoutMs: timeoutMs, connectivityProbeIntervalMs: 100 });
  await store.createTopicWithAssignment(topic('t', 1, 2), [[1, 2]]);
  const p0 = (await store.readLeadership('t-id', 0))!;
  await etcd.kill('SIGSTOP');
  try {
    const started = Date.now();
    await assert.rejects(store.load(), { errorName: 'CLUSTER_UNAVAILABLE' } as object);
    await assert.rejects(store.createTopic(topic('u')), { errorName: 'CLUSTER_UNAVAILABLE' } as object);
    assert.deepEqual(await store.alterIsr(p0, [1]), { ok: false, reason: 'unavailable' });
    await assert.rejects(store.allocateProducerIdBlock(10), { errorName: 'CLUSTER_UNAVAILABLE' } as object);
    // Four requests, each bounded by the timeout (plus slack): far below what a hang would take.
    assert.ok(Date.now() - started < 4 * (timeoutMs + 250) + 5_000, `bounded: ${Date.now() - started} ms`);
    assert.equal(store.connected, false);
  } finally {
    await etcd.kill('SIGCONT');
  }
  // NB: 'unavailable' means "outcome unknown": the timed-out request sits in the paused etcd's socket and may apply
  // after SIGCONT, even after a later read. It is still a compare-and-swap, so it lands only on the state it was made for.
  let again: Awaited<ReturnType<ClusterStore['alterIsr']>> | undefined;
  for (let attempt = 0; attempt < 5 && !again?.ok; attempt++) {
    const stored = (await waitFor(() => store.readLeadership('t-id', 0)))!;
    assert.ok(stored.revision === p0.revision || stored.isr.join() === '1', `either nothing or exactly the timed-out write landed: ${JSON.stringify(stored)}`);
    again = await store.alterIsr(stored, [1, 2]);
  }
  assert.ok(again?.ok, 'a CAS from a fresh read succeeds once etcd runs again');
  await until(store, () => store.connected, 'connected again');
});

test('ClusterStore: producer id blocks never overlap across brokers; the producer id key is created once', { timeout: 30_000 }, async () => {
  const prefix = freshPrefix();
  const a = await open(prefix);
  const b = await open(prefix);
  const starts = await Promise.all(Array.from({ length: 10 }, (_, i) => (i % 2 ? a : b).allocateProducerIdBlock(100)));
  assert.deepEqual([...starts].sort((x, y) => x - y), Array.from({ length: 10 }, (_, i) => i * 100));
  const [ka, kb] = await Promise.all([a.producerIdKey(), b.producerIdKey()]);
  assert.equal(ka.length, 32);
  assert.deepEqual(ka, kb);
  assert.deepEqual(await (await open(prefix)).producerIdKey(), ka);
});

test('ClusterStore: a value that does not decode is reported and treated as absent', { timeout: 30_000 }, async () => {
  const prefix = freshPrefix();
  await raw.put(`${prefix}/topics/bad`).value('{"name":"bad"');
  await raw.put(`${prefix}/partitions/x/0`).value(JSON.stringify({ leader: 'one' }));
  const problems: string[] = [];
  const store = await ClusterStore.open({ endpoints: [etcd.url], prefix, onInvalidValue: (key) => problems.push(key) });
  stores.push(store);
  assert.deepEqual(store.topics(), []);
  assert.deepEqual(store.leaderships(), []);
  assert.deepEqual(problems.sort(), ['partitions/x/0', 'topics/bad']);
  assert.deepEqual(await store.load(), []);
  const leaderships: VersionedLeadership[] = await store.readLeaderships();
  assert.deepEqual(leaderships, []);
});
