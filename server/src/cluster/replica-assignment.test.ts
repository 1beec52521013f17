import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { assignReplicas, defaultMinInsyncReplicas, defaultReplicationFactor } from './replica-assignment.ts';

test('assignReplicas: Kafka layout for 5 brokers, 10 partitions, RF 3 (start 0, shift 0)', () => {
  // Kafka's AdminUtils example: the follower shift grows by one every n partitions.
  assert.deepEqual(assignReplicas({ partitions: 10, replicationFactor: 3, brokerIds: [4, 2, 0, 3, 1], startIndex: 0, replicaShift: 0 }), [
    [0, 1, 2], [1, 2, 3], [2, 3, 4], [3, 4, 0], [4, 0, 1],
    [0, 2, 3], [1, 3, 4], [2, 4, 0], [3, 0, 1], [4, 1, 2],
  ]);
});

test('assignReplicas: the start rotates the preferred leaders', () => {
  assert.deepEqual(assignReplicas({ partitions: 3, replicationFactor: 1, brokerIds: [1, 2, 3], startIndex: 1, replicaShift: 0 }), [[2], [3], [1]]);
});

test('assignReplicas: RF above the live brokers is INVALID_REPLICATION_FACTOR; bad counts are refused', () => {
  assert.throws(() => assignReplicas({ partitions: 1, replicationFactor: 3, brokerIds: [1, 2], startIndex: 0, replicaShift: 0 }), { errorName: 'INVALID_REPLICATION_FACTOR' } as object);
  assert.throws(() => assignReplicas({ partitions: 1, replicationFactor: 1, brokerIds: [], startIndex: 0, replicaShift: 0 }), { errorName: 'INVALID_REPLICATION_FACTOR' } as object);
  assert.throws(() => assignReplicas({ partitions: 1, replicationFactor: 0, brokerIds: [1], startIndex: 0, replicaShift: 0 }), { errorName: 'INVALID_REPLICATION_FACTOR' } as object);
  assert.throws(() => assignReplicas({ partitions: 0, replicationFactor: 1, brokerIds: [1], startIndex: 0, replicaShift: 0 }), { errorName: 'INVALID_PARTITIONS' } as object);
});

test('property: distinct live replicas of the requested count; leaders and replicas spread evenly', () => {
  fc.assert(fc.property(
    fc.uniqueArray(fc.integer({ min: 0, max: 50 }), { minLength: 1, maxLength: 8 }), fc.integer({ min: 1, max: 40 }), fc.nat(), fc.nat(), fc.nat(),
    (brokerIds, partitions, rfPick, startIndex, replicaShift) => {
      const replicationFactor = 1 + (rfPick % brokerIds.length);
      const assignment = assignReplicas({ partitions, replicationFactor, brokerIds, startIndex, replicaShift });
      assert.equal(assignment.length, partitions);
      const leaders = new Map<number, number>();
      for (const replicas of assignment) {
        assert.equal(replicas.length, replicationFactor);
        assert.equal(new Set(replicas).size, replicationFactor);
        assert.ok(replicas.every((id) => brokerIds.includes(id)));
        leaders.set(replicas[0], (leaders.get(replicas[0]) ?? 0) + 1);
      }
      const counts = brokerIds.map((id) => leaders.get(id) ?? 0);
      assert.ok(Math.max(...counts) - Math.min(...counts) <= 1, `leaders spread evenly: ${counts}`);
    }), { numRuns: 500 });
});

test('defaults: RF = min(3, brokers); minInsyncReplicas 2 from RF 3, else 1', () => {
  assert.deepEqual([1, 2, 3, 7].map(defaultReplicationFactor), [1, 2, 3, 3]);
  assert.deepEqual([1, 2, 3, 5].map(defaultMinInsyncReplicas), [1, 1, 2, 2]);
});
