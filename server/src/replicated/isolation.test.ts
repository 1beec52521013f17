import assert from 'node:assert/strict';
import { test } from 'node:test';
import { IsolationDetector } from './isolation.ts';

const limits = { etcdSilenceMs: 2000, peerSilenceMs: 2400 };
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
