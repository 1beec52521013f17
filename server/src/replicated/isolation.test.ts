import assert from 'node:assert/strict';
import { test } from 'node:test';
import { IsolationDetector, peerObservations, type PeerAnswer } from './isolation.ts';

const limits = { etcdSilenceMs: 2000, peerSilenceMs: 2400, witnessMarginMs: 1000 };
const peer = (id: number, reachable: boolean, seesEtcd: boolean | null) => ({ id, reachable, seesEtcd });

test('cut off from etcd while a reachable peer sees it: isolated a lease TTL after the last etcd answer, not before', () => {
  const d = new IsolationDetector(limits);
  assert.equal(d.observe({ nowMs: 0, etcdLastContactMs: 0, peers: [peer(2, true, true)] }).isolated, false);
  assert.equal(d.observe({ nowMs: 1999, etcdLastContactMs: 0, peers: [peer(2, true, true)] }).isolated, false);
  const v = d.observe({ nowMs: 2000, etcdLastContactMs: 0, peers: [peer(2, true, true), peer(3, false, null)] });
  assert.equal(v.isolated, true);
  assert.match(v.reason, /broker 2 reaches it/);
  assert.equal(d.observe({ nowMs: 2100, etcdLastContactMs: 2050, peers: [peer(2, true, true)] }).isolated, false, 'back at once when etcd answers');
});

test('etcd down for everyone, a peer last heard it a moment after this broker: no witness, keep serving; a peer that heard it a probe interval later is one', () => {
  // Fault seed 14054: etcd SIGKILLed at 1000; this broker's last answer was at 100, the peer's at 900 (their
  // probes run out of phase). At 2100 this broker is 2 s silent while the peer still counts etcd as fresh.
  const seen = (id: number, etcdContactAtMs: number | null) => ({ id, reachable: true, seesEtcd: true, etcdContactAtMs });
  const d = new IsolationDetector(limits);
  for (let t = 2000; t <= 6000; t += 100) assert.equal(d.observe({ nowMs: t, etcdLastContactMs: 100, peers: [seen(2, 900), seen(3, 1099)] }).isolated, false, `t=${t}`);
  // Only this broker is cut off: the peer keeps hearing etcd after this broker's last answer.
  const cut = new IsolationDetector(limits);
  assert.equal(cut.observe({ nowMs: 2100, etcdLastContactMs: 100, peers: [seen(2, 900)] }).isolated, false);
  const v = cut.observe({ nowMs: 2200, etcdLastContactMs: 100, peers: [seen(2, 1101)] });
  assert.equal(v.isolated, true);
  assert.match(v.reason, /broker 2 reaches it/);
  // A peer of the previous version says only "fresh": believed, as before.
  assert.equal(new IsolationDetector(limits).observe({ nowMs: 2100, etcdLastContactMs: 100, peers: [seen(2, null)] }).isolated, true);
});

test('etcd down for everyone (peers do not see it either), or nothing reachable at all: keep serving', () => {
  const d = new IsolationDetector(limits);
  for (let t = 0; t <= 10_000; t += 500) assert.equal(d.observe({ nowMs: t, etcdLastContactMs: 0, peers: [peer(2, true, false), peer(3, true, false)] }).isolated, false);
  const alone = new IsolationDetector(limits);
  for (let t = 0; t <= 10_000; t += 500) assert.equal(alone.observe({ nowMs: t, etcdLastContactMs: 0, peers: [peer(2, false, null), peer(3, false, true)] }).isolated, false);
});

test('etcd reachable but every registered peer silent: isolated after peerSilenceMs; one answer resets it; no peers = a single broker, never isolated', () => {
  const d = new IsolationDetector(limits);
  assert.equal(d.observe({ nowMs: 0, etcdLastContactMs: 0, peers: [peer(2, false, true), peer(3, false, true)] }).isolated, false);
  assert.equal(d.observe({ nowMs: 2399, etcdLastContactMs: 2399, peers: [peer(2, false, true), peer(3, false, true)] }).isolated, false);
  assert.equal(d.observe({ nowMs: 2400, etcdLastContactMs: 2400, peers: [peer(2, false, true), peer(3, false, true)] }).isolated, true);
  assert.equal(d.observe({ nowMs: 2500, etcdLastContactMs: 2500, peers: [peer(2, true, true), peer(3, false, true)] }).isolated, false);
  assert.equal(d.observe({ nowMs: 4000, etcdLastContactMs: 4000, peers: [peer(2, false, true)] }).isolated, false, 'silence counts again from the last answer');
  const single = new IsolationDetector(limits);
  for (let t = 0; t <= 10_000; t += 500) assert.equal(single.observe({ nowMs: t, etcdLastContactMs: t, peers: [] }).isolated, false);
});

test('deposed by the cluster (registration revoked while etcd answers) and no peer heard for half a silence: isolated at once; not while a peer still answers, nor long after', () => {
  const silent = (id: number, silentMs: number | null) => ({ id, reachable: silentMs !== null && silentMs <= 1200, seesEtcd: true, silentMs });
  const d = new IsolationDetector(limits);
  assert.equal(d.observe({ nowMs: 1000, etcdLastContactMs: 1000, peers: [silent(2, 1000), silent(3, 1000)] }).isolated, false, 'silent, not deposed: the silence rule waits');
  const v = d.observe({ nowMs: 1300, etcdLastContactMs: 1300, peers: [silent(2, 1300), silent(3, 1300)], deposedAtMs: 1250 });
  assert.equal(v.isolated, true);
  assert.match(v.reason, /deposed/);
  const heard = new IsolationDetector(limits);
  assert.equal(heard.observe({ nowMs: 1300, etcdLastContactMs: 1300, peers: [silent(2, 200), silent(3, 1300)], deposedAtMs: 1250 }).isolated, false, 'a peer answered 200 ms ago: a false report, keep serving');
  assert.equal(new IsolationDetector(limits).observe({ nowMs: 3300, etcdLastContactMs: 1000, peers: [silent(2, 3300), silent(3, 3300)], deposedAtMs: 3250 }).isolated, false, 'etcd silent too: not this rule');
  const later = new IsolationDetector(limits);
  assert.equal(later.observe({ nowMs: 5000, etcdLastContactMs: 5000, peers: [silent(2, 100)], deposedAtMs: 1250 }).isolated, false, 'back once a peer answers');
  assert.equal(new IsolationDetector(limits).observe({ nowMs: 1300, etcdLastContactMs: 1300, peers: [], deposedAtMs: 1250 }).isolated, false, 'alone: never isolated');
});

test('peers weighed: registered ones (not those refusing the dial), plus unregistered ones that answered within a session; seed 14011 keeps serving', () => {
  const answers = new Map<number, PeerAnswer>([
    [1, { atMs: 9_900, seesEtcd: true, etcdContactAtMs: 9_800 }], // answered 100 ms ago, registration revoked meanwhile
    [2, { atMs: 8_000, seesEtcd: true, etcdContactAtMs: 8_000 }], // cut off: silent 2 s
    [4, { atMs: 5_000, seesEtcd: true, etcdContactAtMs: 5_000 }], // gone long ago, not registered
    [5, { atMs: 9_950, seesEtcd: true, etcdContactAtMs: 9_950 }], // answered, but its host now refuses the dial
  ]);
  const peers = peerObservations({ nowMs: 10_000, registered: [2, 3, 5], answers, refusesDial: (id) => id === 5, answerFreshMs: 2_400 });
  assert.deepEqual(peers, [
    { id: 2, reachable: true, seesEtcd: true, silentMs: 2_000, etcdContactAtMs: 8_000 },
    { id: 3, reachable: false, seesEtcd: null, silentMs: null, etcdContactAtMs: null },
    { id: 1, reachable: true, seesEtcd: true, silentMs: 100, etcdContactAtMs: 9_800 },
  ]);
  // Deposed 100 ms ago by the cut-off controller: with broker 1 weighed, not isolated; without it, it was.
  const deposed = { nowMs: 10_000, etcdLastContactMs: 10_000, deposedAtMs: 9_900 };
  assert.equal(new IsolationDetector(limits).observe({ ...deposed, peers }).isolated, false);
  assert.equal(new IsolationDetector(limits).observe({ ...deposed, peers: peers.filter((p) => p.id === 2) }).isolated, true);
});
