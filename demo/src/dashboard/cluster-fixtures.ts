/**
 * Hand-built `GET /v1/cluster` answers for the Cluster panel's tests: three
 * brokers, #1 the controller, #3 dead (not registered); one partition of
 * each health. `selfView` is broker 1's answer, `peerView` broker 2's.
 */
import type { ClusterViewJson } from './cluster-overview.ts';

const STARTED_MS = 1_700_000_000_000;

export function selfView(): ClusterViewJson {
  return {
    brokerId: 1,
    controller: 1,
    etcdConnected: true,
    brokers: [
      { id: 1, clientUrl: 'http://127.0.0.1:8081', startedAtMs: STARTED_MS },
      { id: 2, clientUrl: 'http://127.0.0.1:8082', startedAtMs: STARTED_MS },
    ],
    partitions: [
      {
        topic: 'orders', partition: 0, leader: 1, leaderEpoch: 4, replicas: [1, 2, 3], isr: [1, 2], role: 'leader', highWatermark: 1200, logEndOffset: 1250,
        followers: [{ brokerId: 2, lagRecords: 50, lagMs: 120, inIsr: true }, { brokerId: 3, lagRecords: 900, lagMs: 45_000, inIsr: false }],
      },
      { topic: 'orders', partition: 1, leader: 2, leaderEpoch: 2, replicas: [2, 1], isr: [2, 1], role: 'follower', highWatermark: 800, logEndOffset: 800 },
      { topic: 'orders', partition: 2, leader: -1, leaderEpoch: 7, replicas: [3], isr: [3], role: 'none', highWatermark: 10, logEndOffset: 10 },
    ],
  };
}

export function peerView(): ClusterViewJson {
  const view = selfView();
  return {
    ...view,
    brokerId: 2,
    partitions: view.partitions.map((p) => p.partition === 1
      ? { ...p, role: 'leader' as const, followers: [{ brokerId: 1, lagRecords: 0, lagMs: 0, inIsr: true }] }
      : { ...p, role: p.leader < 0 ? 'none' as const : 'follower' as const, followers: undefined }),
  };
}

export const SINGLE_NODE: ClusterViewJson = {
  brokerId: 0, controller: 0, etcdConnected: false,
  brokers: [{ id: 0, clientUrl: '', startedAtMs: STARTED_MS }],
  partitions: [{ topic: 'activity', partition: 0, leader: 0, leaderEpoch: 0, replicas: [0], isr: [0], role: 'leader', highWatermark: 42, logEndOffset: 42, followers: [] }],
};
