import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { BrokerEndpoint } from '../cluster/cluster-state.ts';
import { HeartbeatProbe, type ProbeLinks } from './liveness-probe.ts';

const endpoint = (id: number, startedAtMs = 0): BrokerEndpoint => ({ id, clientUrl: `http://b${id}`, replicationHost: '127.0.0.1', replicationPort: 9000 + id, startedAtMs, leaseId: String(id) });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Links where brokers in `silent` never answer (until the timeout) and the others answer at once. */
function links(silent: Set<number>, lastAnswer: Map<number, number> = new Map()) {
  const downListeners = new Set<(id: number, reason: 'closed' | 'refused' | 'timeout') => void>();
  const l: ProbeLinks = {
    heartbeat: (id, timeoutMs, signal) => new Promise((resolve, reject) => {
      if (!silent.has(id)) return resolve({ roundTripMs: 0 });
      const t = setTimeout(() => reject(new Error('timeout')), timeoutMs);
      signal?.addEventListener('abort', () => { clearTimeout(t); reject(new Error('aborted')); });
    }),
    onPeerDown: (listener) => { downListeners.add(listener); return () => downListeners.delete(listener); },
    lastAnswerMs: (id) => lastAnswer.get(id),
  };
  return { links: l, down: (id: number, reason: 'closed' | 'refused' | 'timeout') => { for (const f of downListeners) f(id, reason); } };
}

const limits = { controllerHeartbeatMs: 10, brokerSessionTimeoutMs: 200 };

test('a broker silent since before the watch (its last answer on any request) is reported within a tick, not a session later', async () => {
  const { links: l } = links(new Set([2]), new Map([[2, Date.now() - 1500], [3, Date.now()]]));
  const downs: [number, number][] = [];
  const started = Date.now();
  const stop = new HeartbeatProbe(l, { controllerHeartbeatMs: 10, brokerSessionTimeoutMs: 1000 }).watch([endpoint(2), endpoint(3)], (id) => downs.push([id, Date.now() - started]));
  try {
    await sleep(500);
    assert.equal(downs.length, 1);
    assert.equal(downs[0][0], 2);
    assert.ok(downs[0][1] < 500, `reported after ${downs[0][1]} ms (a session is 1000)`);
  } finally {
    stop();
  }
});

test('a broker registered after its last answer starts afresh: silence counts from its start, not an earlier incarnation', async () => {
  const { links: l } = links(new Set([2]), new Map([[2, Date.now() - 5_000]]));
  const downs: number[] = [];
  const registeredAt = Date.now();
  const stop = new HeartbeatProbe(l, limits).watch([endpoint(2, registeredAt), endpoint(3, 0)], () => downs.push(Date.now() - registeredAt));
  try {
    // NB: the time of the report, not a look at the list after a sleep (a sleep woken late by a loaded machine
    // would see the report due at 200 ms and fail).
    while (downs.length === 0 && Date.now() - registeredAt < 5_000) await sleep(5);
    assert.equal(downs.length, 1, 'reported');
    assert.ok(downs[0] >= limits.brokerSessionTimeoutMs - 10, `not before a session timeout from its registration: reported after ${downs[0]} ms`);
    await sleep(100);
    assert.equal(downs.length, 1, 'reported once');
  } finally {
    stop();
  }
});

test('every other broker silent at once: the controller is the one cut off: onCutOff, nobody reported down', async () => {
  const { links: l } = links(new Set([2, 3]));
  const downs: number[] = [];
  const cutOff: string[] = [];
  const stop = new HeartbeatProbe(l, limits).watch([endpoint(2), endpoint(3)], (id) => downs.push(id), (reason) => cutOff.push(reason));
  try {
    await sleep(400);
    assert.deepEqual(downs, []);
    assert.equal(cutOff.length, 1);
  } finally {
    stop();
  }
});

test('a refused connection is reported at once while another broker answers; once nobody answers, the controller is cut off', async () => {
  const { links: l, down } = links(new Set([2]));
  const downs: number[] = [];
  const cutOff: string[] = [];
  const stop = new HeartbeatProbe(l, limits).watch([endpoint(2), endpoint(3)], (id) => downs.push(id), (reason) => cutOff.push(reason));
  try {
    down(3, 'refused');
    assert.deepEqual(downs, [3], 'broker 2 answered a moment ago (its watch just started)');
    await sleep(400);
    assert.deepEqual(downs, [3]);
    assert.equal(cutOff.length, 1, 'broker 2 silent with 3 gone: nobody answers');
  } finally {
    stop();
  }
  const quiet = links(new Set([2]));
  const downs2: number[] = [];
  const stop2 = new HeartbeatProbe(quiet.links, limits).watch([endpoint(2), endpoint(3)], (id) => downs2.push(id), () => assert.fail('not cut off: broker 3 answers'));
  try {
    await sleep(400);
    assert.deepEqual(downs2, [2]);
  } finally {
    stop2();
  }
});
