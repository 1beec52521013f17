import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { TopicInfo } from '../metadata/topic-info.ts';
import type { BrokerEndpoint, VersionedLeadership } from './cluster-state.ts';
import { ClusterStore, type ClusterListener } from './cluster-store.ts';
import { Controller, type LivenessProbe } from './controller.ts';
import { EtcdConnection } from './etcd-connection.ts';
import { EtcdProcess } from './etcd-process.ts';
import { BrokerMembership } from './membership.ts';

let etcd: EtcdProcess;
const running = new Set<TestBroker>();
const observers = new Set<ClusterStore>();

before(async () => {
  etcd = await EtcdProcess.start();
});

after(async () => {
  await Promise.all([...running].map((b) => b.stop()));
  await Promise.all([...observers].map((o) => o.close()));
  await etcd.dispose();
});

/** The probe the replication links will drive; here the test reports a broker down by hand. */
class ManualProbe implements LivenessProbe {
  private readonly watches = new Set<{ ids: Set<number>; onDown: (id: number, reason: string) => void }>();
  watch(brokers: BrokerEndpoint[], onDown: (id: number, reason: string) => void): () => void {
    const w = { ids: new Set(brokers.map((b) => b.id)), onDown };
    this.watches.add(w);
    return () => this.watches.delete(w);
  }
  down(id: number): void {
    for (const w of [...this.watches]) if (w.ids.has(id)) w.onDown(id, 'test: socket closed, reconnect refused');
  }
}

const TTL_MS = 1000;

/** One broker's cluster side, in process: its own etcd connection (a crash closes it without revoking anything). */
class TestBroker {
  private constructor(readonly id: number, readonly connection: EtcdConnection, readonly store: ClusterStore, readonly membership: BrokerMembership, readonly controller: Controller, readonly moves: string[]) {}

  static async start(id: number, prefix: string, probe?: LivenessProbe, preferredLeaderDelayMs = 60_000): Promise<TestBroker> {
    const connection = new EtcdConnection({ endpoints: [etcd.url], prefix, limits: { etcdRequestTimeoutMs: 2000, connectivityProbeIntervalMs: 200 } });
    const store = await ClusterStore.open({ connection });
    const membership = await BrokerMembership.register(connection, {
      id, clientUrl: `http://127.0.0.1:${9000 + id}`, replicationHost: '127.0.0.1', replicationPort: 9500 + id, startedAtMs: Date.now(),
    }, { limits: { brokerLeaseTtlMs: TTL_MS, registrationWaitMs: 10_000, registrationRetryMs: 50 } });
    const moves: string[] = [];
    const controller = Controller.start({
      store, brokerId: id, probe,
      limits: { controllerLeaseTtlMs: TTL_MS, preferredLeaderDelayMs, controllerRetryDelayMs: 50 },
      events: { leadershipMoved: (l, reason) => moves.push(`${reason} ${l.leader}@${l.leaderEpoch}`) },
    });
    const broker = new TestBroker(id, connection, store, membership, controller, moves);
    running.add(broker);
    return broker;
  }

  /** The process dies: nothing is revoked; its leases expire at their TTL. */
  crash(): void {
    running.delete(this);
    this.connection.close();
  }

  async stop(): Promise<void> {
    running.delete(this);
    await this.controller.close();
    await this.membership.close();
    await this.store.close();
    this.connection.close();
  }
}

const freshPrefix = () => `/c-${randomBytes(6).toString('hex')}`;

const topic = (name: string, partitions: number, replicationFactor: number): TopicInfo => ({
  name, topicId: `${name}-id`, partitions, replicationFactor, retentionMs: 1000, retentionBytes: -1, createdAtMs: 1,
});

/** Resolves when `predicate` holds, checked after every change `store` reports and every 25 ms (controller state is not a store event). */
function until(store: ClusterStore, predicate: () => boolean, what: string, timeoutMs = 20_000): Promise<void> {
  if (predicate()) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const poll = setInterval(() => check(), 25);
    const check = () => {
      if (!predicate()) return;
      clearTimeout(timer);
      clearInterval(poll);
      unsubscribe();
      resolve();
    };
    const listener: ClusterListener = {
      topicsChanged: check, leadershipChanged: check, leadershipRemoved: check, brokersChanged: check, controllerChanged: check, resynced: check,
    };
    const unsubscribe = store.watch(listener);
    const timer = setTimeout(() => {
      unsubscribe();
      clearInterval(poll);
      reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`));
    }, timeoutMs);
  });
}

async function startCluster(ids: number[], probe?: LivenessProbe, preferredLeaderDelayMs?: number) {
  const prefix = freshPrefix();
  const brokers = await Promise.all(ids.map((id) => TestBroker.start(id, prefix, probe, preferredLeaderDelayMs)));
  // The test's own view of etcd, so that it outlives any broker it crashes.
  const observer = await ClusterStore.open({ endpoints: [etcd.url], prefix });
  observers.add(observer);
  await until(observer, () => observer.brokers().length === ids.length && brokers.some((b) => b.controller.isActive) && observer.controller() !== null, 'brokers and a controller');
  return { prefix, brokers, observer };
}

const activeControllers = (brokers: TestBroker[]) => brokers.filter((b) => b.controller.isActive).map((b) => b.id);
const leadershipOf = (store: ClusterStore, topicId: string): VersionedLeadership | undefined => store.leadership(topicId, 0);
const summary = (l: VersionedLeadership | undefined) => l && { leader: l.leader, leaderEpoch: l.leaderEpoch, isr: l.isr };

test('controller: exactly one is elected; a crashed controller is replaced once its lease expires, a closed one at once', { timeout: 60_000 }, async () => {
  const { brokers, observer } = await startCluster([1, 2, 3]);
  assert.equal(activeControllers(brokers).length, 1);
  const first = brokers.find((b) => b.controller.isActive)!;
  for (const b of brokers) await until(b.store, () => b.store.controller() === first.id, `broker ${b.id} sees controller ${first.id}`);

  first.crash();
  const survivors = brokers.filter((b) => b !== first);
  await until(observer, () => activeControllers(survivors).length === 1, 'a new controller after the crash');
  const second = survivors.find((b) => b.controller.isActive)!;
  assert.notEqual(second.id, first.id);

  await second.stop();
  const last = survivors.find((b) => b !== second)!;
  await until(last.store, () => last.controller.isActive, 'the last broker takes over after a graceful close');
  assert.equal(last.store.controller(), last.id);
  await last.stop();
});

test('controller: leader down (reported by the probe) → the next ISR replica leads with epoch + 1; the ISR loses the dead leader', { timeout: 60_000 }, async () => {
  const probe = new ManualProbe();
  const { brokers, observer } = await startCluster([1, 2, 3], probe);
  const controller = brokers.find((b) => b.controller.isActive)!;
  // The partition's leader is a broker that is not the controller, so only the probe (not a failover) acts.
  const [leader, next] = brokers.filter((b) => b !== controller);
  await observer.createTopicWithAssignment(topic('t', 1, 3), [[leader.id, next.id, controller.id]]);
  await until(observer, () => leadershipOf(observer, 't-id') !== undefined, 'the partition');

  leader.crash();
  probe.down(leader.id);
  await until(observer, () => leadershipOf(observer, 't-id')?.leader === next.id, 'the new leader');
  assert.deepEqual(summary(leadershipOf(observer, 't-id')), { leader: next.id, leaderEpoch: 1, isr: [next.id, controller.id] });
  assert.equal(observer.broker(leader.id), undefined, 'the reported broker\'s lease was revoked');
  await until(observer, () => controller.moves.length === 1, 'the controller saw its write answered');
  assert.deepEqual(controller.moves, [`leader-down ${next.id}@1`]);
});

test('controller: lease expiry is the fallback when no probe reports the death', { timeout: 60_000 }, async () => {
  const { brokers, observer } = await startCluster([1, 2, 3]);
  const controller = brokers.find((b) => b.controller.isActive)!;
  const [leader, next] = brokers.filter((b) => b !== controller);
  await observer.createTopicWithAssignment(topic('t', 1, 3), [[leader.id, next.id, controller.id]]);
  leader.crash();
  await until(observer, () => leadershipOf(observer, 't-id')?.leader === next.id, 'the new leader after the lease expired');
  assert.deepEqual(summary(leadershipOf(observer, 't-id')), { leader: next.id, leaderEpoch: 1, isr: [next.id, controller.id] });
});

test('controller: no unclean election: with its only ISR member dead the partition goes offline and comes back with that member', { timeout: 60_000 }, async () => {
  const probe = new ManualProbe();
  const { prefix, brokers, observer } = await startCluster([1, 2, 3], probe);
  const controller = brokers.find((b) => b.controller.isActive)!;
  const [leader, other] = brokers.filter((b) => b !== controller);
  await observer.createTopicWithAssignment(topic('t', 1, 3), [[leader.id, other.id, controller.id]]);
  await until(observer, () => leadershipOf(observer, 't-id') !== undefined, 'the partition');
  const shrunk = await observer.alterIsr(leadershipOf(observer, 't-id')!, [leader.id]); // the followers fell behind
  assert.ok(shrunk.ok);

  leader.crash();
  probe.down(leader.id);
  await until(observer, () => leadershipOf(observer, 't-id')?.leader === -1, 'offline');
  assert.deepEqual(summary(leadershipOf(observer, 't-id')), { leader: -1, leaderEpoch: 1, isr: [leader.id] });
  // More changes make the controller decide again: it must still not elect a replica outside the ISR.
  await observer.createTopicWithAssignment(topic('u', 1, 2), [[other.id, controller.id]]);
  await until(observer, () => leadershipOf(observer, 'u-id') !== undefined, 'another topic');
  assert.equal(leadershipOf(observer, 't-id')?.leader, -1);

  const back = await TestBroker.start(leader.id, prefix, probe);
  await until(observer, () => leadershipOf(observer, 't-id')?.leader === leader.id, 'the ISR member back as leader');
  assert.deepEqual(summary(leadershipOf(observer, 't-id')), { leader: leader.id, leaderEpoch: 2, isr: [leader.id] });
  await until(observer, () => controller.moves.length === 2, 'the controller saw its write answered');
  assert.deepEqual(controller.moves, ['offline -1@1', `back-online ${leader.id}@2`]);
  await back.stop();
});

test('controller: the preferred leader gets its leadership back once it is live and in the ISR for preferredLeaderDelayMs', { timeout: 60_000 }, async () => {
  const probe = new ManualProbe();
  const { prefix, brokers, observer } = await startCluster([1, 2, 3], probe, 300);
  const controller = brokers.find((b) => b.controller.isActive)!;
  const [preferred, next] = brokers.filter((b) => b !== controller);
  await observer.createTopicWithAssignment(topic('t', 1, 3), [[preferred.id, next.id, controller.id]]);
  await until(observer, () => leadershipOf(observer, 't-id') !== undefined, 'the partition');
  preferred.crash();
  probe.down(preferred.id);
  await until(observer, () => leadershipOf(observer, 't-id')?.leader === next.id, 'failover');

  const back = await TestBroker.start(preferred.id, prefix, probe);
  await until(observer, () => observer.broker(preferred.id) !== undefined, 'the preferred broker registered again');
  // Live but outside the ISR: it stays a follower (it must catch up first).
  assert.equal(leadershipOf(observer, 't-id')?.leader, next.id);
  // It caught up: the leader adds it back to the ISR.
  const expanded = await observer.alterIsr(leadershipOf(observer, 't-id')!, [next.id, controller.id, preferred.id]);
  assert.ok(expanded.ok);
  await until(observer, () => leadershipOf(observer, 't-id')?.leader === preferred.id, 'the preferred leader back');
  assert.deepEqual(summary(leadershipOf(observer, 't-id')), { leader: preferred.id, leaderEpoch: 2, isr: [next.id, controller.id, preferred.id] });
  await until(observer, () => controller.moves.length === 2, 'the controller saw its write answered');
  assert.deepEqual(controller.moves, [`leader-down ${next.id}@1`, `preferred-leader ${preferred.id}@2`]);
  await back.stop();
});

test('controller: a write guarded by a campaign key that is gone is fenced (a deposed controller cannot write)', { timeout: 30_000 }, async () => {
  const { brokers, observer } = await startCluster([1, 2]);
  await observer.createTopicWithAssignment(topic('t', 1, 2), [[1, 2]]);
  const l = (await observer.readLeadership('t-id', 0))!;
  await until(observer, () => observer.electionCandidates().length === 2, 'both campaigns');
  const guard = observer.electionCandidates()[0];
  const stale = { key: guard.key, createRevision: String(BigInt(guard.createRevision) - 1n) };
  assert.deepEqual(await observer.casLeadership(l, { ...l, leader: 2, leaderEpoch: 1, isr: [2] }, stale), { ok: false, reason: 'fenced' });
  const held = await observer.casLeadership(l, { ...l, leader: 2, leaderEpoch: 1, isr: [2] }, { key: guard.key, createRevision: guard.createRevision });
  assert.ok(held.ok, 'the live campaign key passes');
  await Promise.all(brokers.map((b) => b.stop()));
});

test('controller: etcd paused past every lease TTL: once it resumes the cluster converges (one controller, all brokers registered, every partition led from its ISR)', { timeout: 60_000 }, async () => {
  const { brokers, observer } = await startCluster([1, 2, 3]);
  await observer.createTopicWithAssignment(topic('t', 3, 3), [[1, 2, 3], [2, 3, 1], [3, 1, 2]]);
  await until(observer, () => observer.leaderships().length === 3, 'the partitions');
  await etcd.kill('SIGSTOP');
  try {
    await new Promise((r) => setTimeout(r, 3 * TTL_MS)); // NB: the fault itself is a duration: every lease outlives its TTL
  } finally {
    await etcd.kill('SIGCONT');
  }
  const converged = () => {
    const live = new Set(observer.brokers().map((b) => b.id));
    return live.size === 3 && activeControllers(brokers).length === 1 && observer.controller() !== null
      && observer.leaderships().every((l) => l.leader !== -1 && live.has(l.leader) && l.isr.includes(l.leader));
  };
  await until(observer, converged, 'convergence after etcd resumed', 30_000);
  for (const l of observer.leaderships()) {
    assert.ok(l.isr.length >= 1 && l.isr.every((id) => l.replicas.includes(id)));
  }
});
