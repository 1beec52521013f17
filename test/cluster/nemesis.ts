/**
 * The nemesis (Jepsen's word): turns one `FaultStep` into operations on the
 * harness, choosing its target from the cluster as it is now (which broker
 * leads the picked partition, which follower, who is controller), records
 * the fault in the history (`atMs` = the moment it takes effect, and the
 * partitions the target led, whose failover the checker measures), and
 * answers how to heal it.
 */
import type { ClusterHarness } from './harness.ts';
import type { FaultStep } from './fault-schedule.ts';
import type { FaultRecord, HistoryRecorder, TopicPartition } from './history.ts';

export interface ActiveFault {
  record: FaultRecord;
  /** Undoes the fault (restart, SIGCONT, links back); sets `record.healedAtMs`. */
  heal(): Promise<void>;
}

/** Deterministic sub-choice from one pick in [0, 1): a second, independent-looking index. */
const subPick = (pick: number, n: number): number => Math.floor(pick * 7_919) % n;

export async function injectFault(h: ClusterHarness, step: FaultStep, topic: string, topicId: string, recorder: HistoryRecorder): Promise<ActiveFault> {
  const parts = await h.partitions(topic);
  if (parts.length === 0) throw new Error(`no partitions of ${topic} in the cluster view`);
  const target = parts[Math.floor(step.pick * parts.length)];
  const leader = target.leader;
  const followers = target.replicas.filter((r) => r !== leader);
  const follower = followers[subPick(step.pick, followers.length)];
  const ledBy = (id: number): TopicPartition[] => parts.filter((p) => p.leader === id).map((p) => ({ topic: p.topic, partition: p.partition }));
  const begin = (targetText: string, led: TopicPartition[]): FaultRecord => recorder.fault({ kind: step.kind, atMs: Date.now(), target: targetText, ledPartitions: led });
  const done = (record: FaultRecord, heal: () => Promise<void> | void): ActiveFault => ({
    record,
    heal: async () => {
      await heal();
      record.healedAtMs = Date.now();
    },
  });

  switch (step.kind) {
    case 'killLeader':
    case 'killFollower':
    case 'killController': {
      const victim = step.kind === 'killLeader' ? leader : step.kind === 'killFollower' ? follower : await h.controller();
      if (victim === null || victim < 0) throw new Error(`${step.kind}: no target (view: ${JSON.stringify(parts)})`);
      const record = begin(`node ${victim}`, ledBy(victim));
      await h.killBroker(victim);
      return done(record, () => h.startBroker(victim));
    }
    case 'pauseLeader': {
      const record = begin(`node ${leader}`, ledBy(leader));
      h.pauseBroker(leader);
      return done(record, () => h.resumeBroker(leader));
    }
    case 'partitionLeader': {
      const record = begin(`node ${leader} from its peers (${step.linkMode})`, ledBy(leader));
      h.cutFromPeers(leader, step.linkMode);
      return done(record, () => h.healNetwork());
    }
    case 'partitionPair': {
      const ids = h.ids;
      const pairs = ids.flatMap((a, i) => ids.slice(i + 1).map((b) => [a, b] as const));
      const [a, b] = pairs[subPick(step.pick, pairs.length)];
      const record = begin(`${a}<->${b} (${step.linkMode})`, []);
      h.cutLinks(a, b, step.linkMode);
      return done(record, () => h.healNetwork());
    }
    case 'isolateLeaderFromEtcd': {
      const record = begin(`node ${leader} from etcd (${step.linkMode})`, ledBy(leader));
      h.cutFromEtcd(leader, step.linkMode);
      return done(record, () => h.healNetwork());
    }
    case 'killEtcd': {
      const record = begin('etcd', []);
      await h.killEtcd();
      return done(record, () => h.restartEtcd());
    }
    case 'truncateFollowerTail':
    case 'bitflipFollowerTail': {
      const record = begin(`node ${follower}, ${topic}/${target.partition}`, ledBy(follower));
      await h.killBroker(follower);
      const what = step.kind === 'truncateFollowerTail'
        ? await h.truncateTail(follower, topicId, target.partition, step.pick)
        : await h.flipTailBit(follower, topicId, target.partition, step.pick);
      record.target += `: ${what}`;
      return done(record, () => h.startBroker(follower));
    }
    case 'killAll': {
      const record = begin('every broker and etcd', parts.map((p) => ({ topic: p.topic, partition: p.partition })));
      await h.killAll();
      return done(record, () => h.startAll());
    }
  }
}
