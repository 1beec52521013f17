/**
 * QuotaPoints, the request layer's use of the quota module: produce held
 * until its buckets repaid it (in arrival order), refused past
 * maxThrottleDelayMs with retryAfterMs and nothing charged, credit withheld,
 * HTTP reads refused with the hint, counted resources, the metric. Time is a
 * fake clock and setTimeout is mocked (node:test mock timers): nothing here
 * depends on the machine's speed.
 */
import { afterEach, beforeEach, mock, test } from 'node:test';
import assert from 'node:assert/strict';
import { RunnelError } from '@runnel/client/codec';
import { anonymousPrincipal, principalFromClaims } from '../auth/principal.ts';
import { defaultLimits, type Limits } from '../limits.ts';
import type { RunnelMetrics } from '../metrics.ts';
import type { QuotaConfigInput } from '../quota/index.ts';
import { QuotaPoints } from './quota-points.ts';
import { requestContext, type RequestContext } from './request-context.ts';

const principal = (sub: string) => principalFromClaims({ sub, exp: 4_000_000_000, runnel: { publish: ['*'], subscribe: ['*'], group: [], admin: false } });
const alice: RequestContext = requestContext('ws', '10.0.0.1', 'tab-1', principal('alice'));
const aliceOtherTab: RequestContext = requestContext('ws', '10.0.0.1', 'tab-2', principal('alice'));
const bob: RequestContext = requestContext('http', '10.0.0.1', '', principal('bob'));
const anonymous: RequestContext = requestContext('ws', '127.0.0.1', '', anonymousPrincipal());

let clock = 0;
let counted: string[] = [];
let points: QuotaPoints | undefined;

beforeEach(() => {
  clock = 0;
  counted = [];
  mock.timers.enable({ apis: ['setTimeout'] });
});
afterEach(() => {
  points?.close();
  points = undefined;
  mock.timers.reset();
});

function quotaPoints(config: QuotaConfigInput | undefined, limits: Partial<Limits> = {}): QuotaPoints {
  const metrics = { quotaThrottled: { inc: (labels: { kind: string }) => counted.push(labels.kind) } } as unknown as RunnelMetrics;
  points = new QuotaPoints(config, { ...defaultLimits, ...limits }, metrics, () => clock);
  return points;
}

/** Lets promise callbacks run (setImmediate is not mocked). */
const settle = () => new Promise<void>((r) => setImmediate(r));

/** Moves the fake clock and the mocked timers together. */
async function advance(ms: number): Promise<void> {
  clock += ms;
  mock.timers.tick(ms);
  await settle();
}

/** A promise's state, without waiting for it. */
function track(p: Promise<unknown>): { state: 'pending' | 'resolved' | 'rejected'; error?: unknown } {
  const t: { state: 'pending' | 'resolved' | 'rejected'; error?: unknown } = { state: 'pending' };
  p.then(() => { t.state = 'resolved'; }, (error) => { t.state = 'rejected'; t.error = error; });
  return t;
}

const records = { perSubject: { produceRecords: { perSecond: 1000, burst: 1000 } } } satisfies QuotaConfigInput;

test('no quota configured: every call passes at once and nothing is counted', async () => {
  const q = quotaPoints(undefined);
  for (let i = 0; i < 100; i++) await q.throttleProduce(alice, 1 << 20, 10_000);
  assert.equal(q.creditDelayMs(alice, 1 << 20), 0);
  q.checkFetch(alice, 1 << 20);
  for (let i = 0; i < 100; i++) q.acquire('connectionsPerIp', '10.0.0.1');
  assert.equal(q.heldClients, 0);
  assert.deepEqual(counted, []);
});

test('throttleProduce: within the bucket at once; over it held until the bucket repaid it, then admitted', async () => {
  const q = quotaPoints(records);
  const first = track(q.throttleProduce(alice, 100, 1000));
  await settle();
  assert.equal(first.state, 'resolved', 'a full bucket admits at once');
  const held = track(q.throttleProduce(alice, 100, 500));
  await advance(499);
  assert.equal(held.state, 'pending', 'held while the bucket refills (500 records at 1000/s)');
  await advance(1);
  assert.equal(held.state, 'resolved', 'admitted once repaid, without asking again');
  assert.deepEqual(counted, ['produceRecords'], 'the delay is counted');
  assert.equal(q.heldClients, 0, 'nothing is left behind');
});

test('throttleProduce: held produces of one client leave in arrival order, each after its own reservation', async () => {
  const q = quotaPoints(records);
  await q.throttleProduce(alice, 100, 1000); // empties the bucket
  const done: number[] = [];
  const held = [300, 1, 200].map((n, i) => q.throttleProduce(i === 1 ? aliceOtherTab : alice, 100, n).then(() => done.push(i)));
  await advance(299);
  assert.deepEqual(done, []);
  await advance(1);
  assert.deepEqual(done, [0], 'the first after 300 ms');
  await advance(1);
  assert.deepEqual(done, [0, 1], 'the one-record produce queued behind it (another tab of the same subject and address)');
  await advance(199);
  assert.deepEqual(done, [0, 1]);
  await advance(1);
  assert.deepEqual(done, [0, 1, 2], 'the third after 300 + 1 + 200 ms');
  await Promise.all(held);
  assert.equal(q.heldClients, 0);
});

test('throttleProduce: past maxThrottleDelayMs refused at once with retryAfterMs, and charged nothing', async () => {
  const q = quotaPoints(records, { maxThrottleDelayMs: 1000 });
  await q.throttleProduce(alice, 100, 1000);
  const held = track(q.throttleProduce(alice, 100, 800)); // 800 ms: held
  await assert.rejects(q.throttleProduce(alice, 100, 300), (e: unknown) => {
    assert.ok(e instanceof RunnelError);
    assert.equal(e.errorName, 'THROTTLING_QUOTA_EXCEEDED');
    assert.equal(e.retryable, true);
    assert.equal(e.details?.retryAfterMs, 1100, 'the wait it would have had: 800 ms ahead of it + 300 ms of its own');
    return true;
  });
  assert.deepEqual(counted, ['produceRecords', 'produceRecords'], 'the delay and the refusal');
  await advance(800);
  assert.equal(held.state, 'resolved');
  // The refused 300 records were not charged: 200 records now wait 200 ms, not 500.
  const next = track(q.throttleProduce(alice, 100, 200));
  await advance(199);
  assert.equal(next.state, 'pending');
  await advance(1);
  assert.equal(next.state, 'resolved');
});

test('throttleProduce: a batch larger than the burst waits for a full bucket (never wedged); other subjects are not held', async () => {
  const q = quotaPoints(records, { maxThrottleDelayMs: 1000 });
  await q.throttleProduce(alice, 100, 600);
  const big = track(q.throttleProduce(alice, 100, 2500)); // needs a full bucket: 600 ms away
  const other = track(q.throttleProduce(bob, 100, 1000));
  await settle();
  assert.equal(other.state, 'resolved', "bob's bucket is his own");
  await advance(599);
  assert.equal(big.state, 'pending');
  await advance(1);
  assert.equal(big.state, 'resolved');
  // It left a debt of 1500 records: the next record of alice waits 1.5 s + 1 ms: refused with that hint.
  await assert.rejects(q.throttleProduce(alice, 100, 1), (e: unknown) => e instanceof RunnelError && e.details?.retryAfterMs === 1501);
});

test('throttleProduce: per-subject rates skip the anonymous principal; per-IP rates hold everyone', async () => {
  const q = quotaPoints({ perSubject: { produceRecords: { perSecond: 1 } }, perIp: { produceBytes: { perSecond: 1000 } } });
  await q.throttleProduce(anonymous, 1000, 500); // no per-subject bucket for anonymous
  const held = track(q.throttleProduce(anonymous, 250, 500));
  await advance(249);
  assert.equal(held.state, 'pending');
  await advance(1);
  assert.equal(held.state, 'resolved');
  assert.deepEqual(counted, ['produceBytes']);
});

test('creditDelayMs: grants withheld until the fetch buckets repaid them, charged once', async () => {
  const q = quotaPoints({ perSubject: { fetchBytes: { perSecond: 1000, burst: 1000 } } });
  assert.equal(q.creditDelayMs(alice, 1000), 0, 'within the burst: granted now');
  assert.equal(q.creditDelayMs(alice, 500), 500);
  assert.equal(q.creditDelayMs(alice, 300), 800, 'behind the withheld one');
  clock = 800;
  assert.equal(q.creditDelayMs(alice, 100), 100, 'repaid: the next waits only for itself');
  assert.deepEqual(counted, ['fetchBytes', 'fetchBytes', 'fetchBytes']);
  // HTTP reads share the buckets: refused with the hint while in debt.
  assert.throws(() => q.checkFetch(alice, 1), (e: unknown) => e instanceof RunnelError && e.errorName === 'THROTTLING_QUOTA_EXCEEDED' && e.details?.retryAfterMs === 101);
});

test('creditDelayMs: not bounded by maxThrottleDelayMs, so a huge grant cannot buy its bytes early', async () => {
  const q = quotaPoints({ perSubject: { fetchBytes: { perSecond: 1000, burst: 1000 } } }, { maxThrottleDelayMs: 500 });
  assert.equal(q.creditDelayMs(alice, 1000), 0);
  assert.equal(q.creditDelayMs(alice, 64 * 1024 * 1024), 67_108_864, 'withheld until paid at 1000 B/s (18.6 h), not 500 ms');
});

test('checkFetch refuses with the hint while over the rate; chargeFetch debits what was read', () => {
  const q = quotaPoints({ perIp: { fetchBytes: { perSecond: 1000 } } });
  q.checkFetch(bob, 1);
  q.chargeFetch(bob, 3000); // a read returned 3000 bytes: 2001 in debt
  assert.throws(() => q.checkFetch(bob, 1), (e: unknown) => e instanceof RunnelError && e.details?.retryAfterMs === 2002);
  clock = 2002;
  q.checkFetch(bob, 1);
  assert.deepEqual(counted, ['fetchBytes']);
});

test('acquire/release and tryAcquire: counted units per key, LIMIT_EXCEEDED past the quota, freed by release', () => {
  const q = quotaPoints({ maxConnectionsPerIp: 2, maxTopicsPerSubject: 1 });
  assert.equal(q.tryAcquire('connectionsPerIp', '10.0.0.1'), true);
  assert.equal(q.tryAcquire('connectionsPerIp', '10.0.0.1'), true);
  assert.equal(q.tryAcquire('connectionsPerIp', '10.0.0.1'), false, 'a third connection from the address');
  assert.equal(q.tryAcquire('connectionsPerIp', '10.0.0.2'), true, 'another address has its own count');
  q.release('connectionsPerIp', '10.0.0.1');
  assert.equal(q.tryAcquire('connectionsPerIp', '10.0.0.1'), true, 'a released unit is free again');

  q.acquire('topicsPerSubject', 'alice');
  assert.throws(() => q.acquire('topicsPerSubject', 'alice'), (e: unknown) => {
    assert.ok(e instanceof RunnelError);
    assert.equal(e.errorName, 'LIMIT_EXCEEDED');
    assert.match(e.message, /topics per subject quota reached \(1\)/);
    assert.equal(e.details?.retryAfterMs, 0, 'a count has no time to wait for');
    return true;
  });
  q.acquire('topicsPerSubject', 'bob');
  q.release('topicsPerSubject', 'alice');
  q.acquire('topicsPerSubject', 'alice');
  assert.deepEqual(counted, ['connectionsPerIp', 'topicsPerSubject']);
});
