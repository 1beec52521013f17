import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ClusterCache, type KeyEvent } from './cluster-cache.ts';

const topic = (name: string, topicId = `${name}-id`) => JSON.stringify({ name, topicId, partitions: 1, replicationFactor: 1, retentionMs: 1, retentionBytes: -1, createdAtMs: 1 });
const leadership = (leader: number, leaderEpoch = 0) => JSON.stringify({ leader, leaderEpoch, isr: [leader], replicas: [1, 2] });
const broker = (id: number, leaseId = '7') => JSON.stringify({ id, clientUrl: 'http://x', replicationHost: 'h', replicationPort: 1, startedAtMs: 1, leaseId });

const put = (key: string, value: string, rev: number, create = rev): KeyEvent => ({ type: 'put', key, value, modRevision: String(rev), createRevision: String(create) });
const del = (key: string, rev: number): KeyEvent => ({ type: 'delete', key, value: '', modRevision: String(rev), createRevision: '0' });

test('ClusterCache.replace reports exactly the differences from the previous state', () => {
  const cache = new ClusterCache();
  const first = cache.replace([
    put('topics/a', topic('a'), 2), put('partitions/a-id/0', leadership(1), 2), put('partitions/a-id/1', leadership(2), 2),
    put('brokers/1', broker(1), 3), put('election/controller/99', '1', 4),
  ], '4');
  assert.deepEqual(first.notices.map((n) => n.type), ['topics', 'leadership', 'leadership', 'brokers', 'controller']);
  // While the watch was down: partition 0 moved, partition 1 vanished, topic b appeared, broker 1 re-registered, the controller changed.
  const second = cache.replace([
    put('topics/a', topic('a'), 2), put('topics/b', topic('b'), 9), put('partitions/a-id/0', leadership(2, 1), 8),
    put('brokers/1', broker(1, '8'), 10), put('election/controller/100', '2', 11),
  ], '11');
  assert.deepEqual(second.notices, [
    { type: 'topics' },
    { type: 'leadership-removed', topicId: 'a-id', partition: 1 },
    { type: 'leadership', leadership: { topicId: 'a-id', partition: 0, revision: '8', leader: 2, leaderEpoch: 1, isr: [2], replicas: [1, 2] } },
    { type: 'brokers' },
    { type: 'controller', controller: 2 },
  ]);
  assert.deepEqual(cache.replace([
    put('topics/a', topic('a'), 2), put('topics/b', topic('b'), 9), put('partitions/a-id/0', leadership(2, 1), 8),
    put('brokers/1', broker(1, '8'), 10), put('election/controller/100', '2', 11),
  ], '12').notices, [], 'the same state again: nothing');
  assert.equal(cache.revision, '12');
});

test('ClusterCache.apply: per revision, topics before leaderships, then brokers, then the controller', () => {
  const cache = new ClusterCache();
  cache.replace([], '1');
  const update = cache.apply([
    put('topics/a', topic('a'), 2), put('partitions/a-id/0', leadership(1), 2),
    put('election/controller/5', '3', 3), put('election/controller/4', '2', 4, 2),
    put('brokers/3', broker(3), 5), del('topics/a', 6), del('partitions/a-id/0', 6),
  ], '6');
  assert.deepEqual(update.notices.map((n) => n.type === 'controller' ? `controller ${n.controller}` : n.type), [
    'topics', 'leadership', 'controller 3', 'controller 2', 'brokers', 'topics', 'leadership-removed',
  ]);
  assert.equal(cache.controller(), 2, 'the lowest create revision wins the election');
  const deleted = cache.apply([del('election/controller/4', 7)], '7');
  assert.deepEqual(deleted.notices, [{ type: 'controller', controller: 3 }]);
});

test('ClusterCache: an undecodable value is a problem and removes the key', () => {
  const cache = new ClusterCache();
  cache.replace([put('partitions/a-id/0', leadership(1), 2), put('brokers/1', broker(1), 2)], '2');
  const update = cache.apply([put('partitions/a-id/0', '{"leader":"x"}', 3), put('brokers/1', broker(2), 4)], '4');
  assert.deepEqual(update.problems.map((p) => p.key), ['partitions/a-id/0', 'brokers/1']);
  assert.deepEqual(update.notices, [{ type: 'leadership-removed', topicId: 'a-id', partition: 0 }, { type: 'brokers' }]);
  assert.equal(cache.leadership('a-id', 0), undefined);
  assert.deepEqual(cache.brokers(), []);
});
