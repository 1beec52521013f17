/**
 * The replicated topic registry (replicated-registry.ts) without etcd or
 * peers: a fake watch-fed store and replicas that record what they were told.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import type { VersionedLeadership } from '../cluster/cluster-state.ts';
import { LimitsSchema } from '../limits.ts';
import type { TopicInfo } from '../metadata/topic-info.ts';
import type { LeaderForwarder, LocalReplica } from './cluster-partition.ts';
import { ReplicatedRegistry, type TopicStore } from './replicated-registry.ts';

const info: TopicInfo = { name: 'orders', topicId: 'tid', partitions: 3, replicationFactor: 3, minInsyncReplicas: 2, retentionMs: -1, retentionBytes: -1, createdAtMs: 0 };

function leadership(partition: number, leaderEpoch: number, revision: string): VersionedLeadership {
  return { topicId: info.topicId, partition, leader: 2, leaderEpoch, isr: [2, 1, 3], replicas: [2, 1, 3], revision };
}

test('a leadership change the watch brings while a new topic\'s later partitions open is applied to the partitions already opened', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'runnel-registry-'));
  const cache = new Map([0, 1, 2].map((p) => [p, leadership(p, 0, '10')]));
  let registry: ReplicatedRegistry | undefined;
  const applied = new Map<number, VersionedLeadership>();
  let topics: TopicInfo[] = [];
  const store: TopicStore = {
    topics: () => topics, load: async () => topics, leadership: (_, p) => cache.get(p), liveBrokerIds: () => [1, 2, 3],
    createTopicWithAssignment: async () => undefined, deleteTopic: async () => undefined,
  };
  try {
    registry = await ReplicatedRegistry.open({
      brokerId: 1, dataDir: dir, limits: LimitsSchema.parse({}), flushIntervalMs: 0, store, forwarder: {} as LeaderForwarder,
      replica: (_topic, p) => {
        if (p === 2) {
          // Partition 0 is open, the topic not yet served: the controller moves partition 0, and the watch delivers it.
          cache.set(0, leadership(0, 1, '11'));
          registry!.leadershipChanged(cache.get(0)!);
        }
        return {
          role: 'follower', applyLeadership: (l: VersionedLeadership) => { if (!applied.has(p) || l.revision > applied.get(p)!.revision) applied.set(p, l); },
          replicationView: () => ({}), close: async () => undefined,
        } as unknown as LocalReplica;
      },
      partitionLimits: { leaderWaitMs: 100, remoteReadWaitMs: 100, remoteReadMaxBytes: 1024 }, hooks: {},
    });
    // Created elsewhere: the watch brings the topic (topicsChanged → sync).
    topics = [info];
    await registry.sync();
    const p0 = registry.get('orders')!.partitions[0];
    assert.deepEqual([p0.leaderEpoch, applied.get(0)?.revision], [1, '11'], 'partition 0 follows epoch 1');
    assert.deepEqual([1, 2].map((p) => applied.get(p)?.revision), ['10', '10']);
  } finally {
    await registry?.close();
    await rm(dir, { recursive: true, force: true });
  }
});
