import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ConfigError } from '../config.ts';
import { QuotaManager, type QuotaClient } from './client-quotas.ts';

const alice: QuotaClient = { subject: 'alice', isAnonymous: false, ip: '10.0.0.1' };
const aliceElsewhere: QuotaClient = { subject: 'alice', isAnonymous: false, ip: '10.0.0.2' };
const bob: QuotaClient = { subject: 'bob', isAnonymous: false, ip: '10.0.0.1' };
const anonymous: QuotaClient = { subject: 'anonymous', isAnonymous: true, ip: '127.0.0.1' };

test('defaults: every quota is off', () => {
  const q = new QuotaManager();
  for (let i = 0; i < 1000; i++) {
    assert.deepEqual(q.tryProduce(alice, 1 << 20, 10_000, 0), { ok: true });
    assert.deepEqual(q.tryFetch(alice, 1 << 20, 0), { ok: true });
    assert.deepEqual(q.acquire('connectionsPerIp', alice.ip), { ok: true });
  }
  assert.equal(q.snapshot().trackedBuckets, 0);
  assert.equal(q.snapshot().trackedCounts, 0);
});

test('produce bytes per subject: throttled with a hint, across IPs, other subjects unaffected', () => {
  const q = new QuotaManager({ perSubject: { produceBytes: { perSecond: 1000 } } });
  assert.deepEqual(q.tryProduce(alice, 600, 1, 0), { ok: true });
  const refused = q.tryProduce(aliceElsewhere, 600, 1, 0);
  assert.deepEqual(refused, { ok: false, code: 'THROTTLING_QUOTA_EXCEEDED', kind: 'produceBytes', scope: 'subject', retryAfterMs: 200, message: 'produceBytes quota per subject exceeded; retry after 200 ms' });
  assert.deepEqual(q.tryProduce(bob, 600, 1, 0), { ok: true });
  assert.deepEqual(q.tryProduce(alice, 600, 1, 200), { ok: true });
  assert.equal(q.snapshot().throttled.produceBytes, 1);
});

test('per-IP rates apply to everyone, including anonymous; per-subject rates skip anonymous', () => {
  const q = new QuotaManager({ perSubject: { produceRecords: { perSecond: 1 } }, perIp: { produceRecords: { perSecond: 10 } } });
  for (let i = 0; i < 10; i++) assert.ok(q.tryProduce(anonymous, 1, 1, 0).ok);
  const r = q.tryProduce(anonymous, 1, 1, 0);
  assert.ok(!r.ok && r.code === 'THROTTLING_QUOTA_EXCEEDED' && r.scope === 'ip' && r.kind === 'produceRecords');
});

test('a request passes only when every bucket admits it, and then takes from all of them', () => {
  const q = new QuotaManager({ perSubject: { produceBytes: { perSecond: 1000 }, produceRecords: { perSecond: 10 } }, perIp: { produceBytes: { perSecond: 2000 } } });
  assert.ok(q.tryProduce(alice, 100, 10, 0).ok);
  // records are exhausted: bytes must not be taken by the refused request
  const r = q.tryProduce(alice, 900, 1, 0);
  assert.ok(!r.ok && r.code === 'THROTTLING_QUOTA_EXCEEDED' && r.kind === 'produceRecords');
  assert.ok(q.tryProduce(alice, 900, 1, 100).ok, '900 bytes were still there');
});

test('the hint is the longest wait among the refusing buckets', () => {
  const q = new QuotaManager({ perSubject: { produceBytes: { perSecond: 1000 } }, perIp: { produceBytes: { perSecond: 100 } } });
  assert.ok(q.tryProduce(alice, 100, 1, 0).ok);
  const r = q.tryProduce(alice, 100, 1, 0);
  assert.ok(!r.ok && r.code === 'THROTTLING_QUOTA_EXCEEDED' && r.scope === 'ip' && r.retryAfterMs === 1000);
});

test('fetch: gate with tryFetch, settle afterwards with chargeFetch (debt delays the next fetch)', () => {
  const q = new QuotaManager({ perIp: { fetchBytes: { perSecond: 1000 } } });
  assert.ok(q.tryFetch(alice, 1000, 0).ok);
  q.chargeFetch(alice, 500, 0);
  const r = q.tryFetch(alice, 100, 0);
  assert.ok(!r.ok && r.code === 'THROTTLING_QUOTA_EXCEEDED' && r.retryAfterMs === 600);
});

test('counts: connections per IP, subscriptions per connection, topics per subject', () => {
  const q = new QuotaManager({ maxConnectionsPerIp: 2, maxSubscriptionsPerConnection: 1, maxTopicsPerSubject: 1 });
  assert.ok(q.acquire('connectionsPerIp', '10.0.0.1').ok);
  assert.ok(q.acquire('connectionsPerIp', '10.0.0.1').ok);
  assert.deepEqual(q.acquire('connectionsPerIp', '10.0.0.1'), { ok: false, code: 'LIMIT_EXCEEDED', kind: 'connectionsPerIp', message: 'connections per IP quota reached (2)' });
  assert.ok(q.acquire('connectionsPerIp', '10.0.0.2').ok);
  q.release('connectionsPerIp', '10.0.0.1');
  assert.ok(q.acquire('connectionsPerIp', '10.0.0.1').ok);
  assert.ok(q.acquire('subscriptionsPerConnection', 'conn-1').ok);
  assert.ok(!q.acquire('subscriptionsPerConnection', 'conn-1').ok);
  assert.ok(q.acquire('topicsPerSubject', 'alice').ok);
  assert.ok(!q.acquire('topicsPerSubject', 'alice').ok);
  q.release('topicsPerSubject', 'alice');
  assert.equal(q.held('topicsPerSubject', 'alice'), 0);
  const s = q.snapshot();
  assert.deepEqual(s.throttled, { produceBytes: 0, produceRecords: 0, fetchBytes: 0, connectionsPerIp: 1, subscriptionsPerConnection: 1, topicsPerSubject: 1 });
  assert.equal(s.trackedCounts, 3, '10.0.0.1, 10.0.0.2, conn-1');
});

test('release without acquire is a programmer error', () => {
  const q = new QuotaManager({ maxConnectionsPerIp: 1 });
  assert.throws(() => q.release('connectionsPerIp', 'x'), /without a matching acquire/);
  new QuotaManager().release('connectionsPerIp', 'x'); // a quota that is off counts nothing: release is a no-op
});

test('bounded memory: counters refuse past maxTrackedKeys, buckets evict', () => {
  const q = new QuotaManager({ maxConnectionsPerIp: 5, maxTrackedKeys: 16, perIp: { produceBytes: { perSecond: 10 } } });
  for (let i = 0; i < 16; i++) assert.ok(q.acquire('connectionsPerIp', `ip${i}`).ok);
  const r = q.acquire('connectionsPerIp', 'ip16');
  assert.ok(!r.ok && r.code === 'LIMIT_EXCEEDED' && /quota table full/.test(r.message));
  assert.ok(q.acquire('connectionsPerIp', 'ip0').ok, 'keys already held may still grow');
  for (let i = 0; i < 100; i++) q.tryProduce({ subject: 's', isAnonymous: false, ip: `ip${i}` }, 1, 1, 0);
  assert.equal(q.snapshot().trackedBuckets, 16);
  assert.equal(q.snapshot().evictedActiveBuckets, 84);
  assert.equal(q.sweep(10_000), 16);
  assert.equal(q.snapshot().trackedBuckets, 0);
});

test('config is validated once, with the field named', () => {
  assert.throws(() => new QuotaManager({ perIp: { produceBytes: { perSecond: 0 } } }), (e: Error) => e instanceof ConfigError && /quotas\.perIp\.produceBytes\.perSecond/.test(e.message));
  assert.throws(() => new QuotaManager({ maxConectionsPerIp: 1 } as never), (e: Error) => e instanceof ConfigError && /Unrecognized key/.test(e.message));
});

test('property: per subject, produced bytes over any window ≤ max(burst, largest) + rate × window, whatever the IPs', () => {
  fc.assert(fc.property(fc.array(fc.record({ gapMs: fc.nat(200), bytes: fc.integer({ min: 1, max: 3000 }), ip: fc.constantFrom('a', 'b', 'c') }), { maxLength: 150 }), (requests) => {
    const q = new QuotaManager({ perSubject: { produceBytes: { perSecond: 1000, burst: 2000 } } });
    let now = 0;
    const admitted: { at: number; bytes: number }[] = [];
    for (const { gapMs, bytes, ip } of requests) {
      now += gapMs;
      if (q.tryProduce({ subject: 'alice', isAnonymous: false, ip }, bytes, 1, now).ok) admitted.push({ at: now, bytes });
    }
    for (let i = 0; i < admitted.length; i++) {
      let sum = 0;
      let largest = 0;
      for (let j = i; j < admitted.length; j++) {
        sum += admitted[j].bytes;
        largest = Math.max(largest, admitted[j].bytes);
        assert.ok(sum <= Math.max(2000, largest) + (admitted[j].at - admitted[i].at));
      }
    }
  }));
});

test('reserveProduce: admitted now, charged and told to wait, or refused past maxWaitMs with nothing charged', () => {
  const q = new QuotaManager({ perSubject: { produceRecords: { perSecond: 1000 } } });
  assert.deepEqual(q.reserveProduce(alice, 10, 1000, 0, 1000), { ok: true, waitMs: 0 });
  assert.deepEqual(q.reserveProduce(alice, 10, 400, 0, 1000), { ok: true, waitMs: 400, kind: 'produceRecords', scope: 'subject' });
  assert.deepEqual(q.reserveProduce(alice, 10, 400, 0, 1000), { ok: true, waitMs: 800, kind: 'produceRecords', scope: 'subject' }, 'behind the first reservation');
  const refused = q.reserveProduce(alice, 10, 400, 0, 1000);
  assert.ok(!refused.ok && refused.code === 'THROTTLING_QUOTA_EXCEEDED' && refused.retryAfterMs === 1200);
  assert.deepEqual(q.reserveProduce(alice, 10, 100, 0, 1000), { ok: true, waitMs: 900, kind: 'produceRecords', scope: 'subject' }, 'the refusal took nothing');
  assert.deepEqual(q.reserveProduce(bob, 10, 1000, 0, 1000), { ok: true, waitMs: 0 }, 'other subjects have their own bucket');
  assert.equal(q.snapshot().throttled.produceRecords, 4, 'delays and refusals are throttles');
});

test('property: reservations are admitted in request order, within the token-bucket bound (+ 1 ms of refill) over any window', () => {
  const rate = fc.record({ perSecond: fc.integer({ min: 1, max: 5000 }), burst: fc.integer({ min: 1, max: 5000 }) });
  const steps = fc.array(fc.record({ gapMs: fc.nat(300), cost: fc.integer({ min: 1, max: 6000 }) }), { minLength: 1, maxLength: 150 });
  fc.assert(fc.property(rate, steps, fc.integer({ min: 0, max: 3000 }), (r, s, maxWaitMs) => {
    const q = new QuotaManager({ perSubject: { produceRecords: r } });
    let now = 0;
    const admitted: { at: number; cost: number }[] = [];
    for (const { gapMs, cost } of s) {
      now += gapMs;
      const reserved = q.reserveProduce(alice, 1, cost, now, maxWaitMs);
      if (!reserved.ok) {
        assert.ok(reserved.retryAfterMs > maxWaitMs);
        continue;
      }
      assert.ok(reserved.waitMs <= maxWaitMs);
      const at = now + reserved.waitMs;
      if (admitted.length > 0) assert.ok(at >= admitted[admitted.length - 1].at, 'a later request is never admitted before an earlier one');
      admitted.push({ at, cost });
    }
    for (let i = 0; i < admitted.length; i++) {
      let sum = 0;
      let largest = 0;
      for (let j = i; j < admitted.length; j++) {
        sum += admitted[j].cost;
        largest = Math.max(largest, admitted[j].cost);
        // NB: + one millisecond of refill: waits are whole milliseconds (rounded up), so a reservation may be admitted
        // in the same millisecond as the one it queued behind, holding the fraction of a millisecond it overpaid.
        assert.ok(sum <= Math.max(r.burst, largest) + (r.perSecond * (admitted[j].at - admitted[i].at + 1)) / 1000, `window ${i}..${j}: ${sum}`);
      }
    }
  }), { numRuns: 500 });
});

test('withholdFetch: charged in full and withheld until every bucket has repaid it, whatever the size of the grant', () => {
  const q = new QuotaManager({ perSubject: { fetchBytes: { perSecond: 1000, burst: 500 } }, perIp: { fetchBytes: { perSecond: 2000 } } });
  assert.equal(q.withholdFetch(alice, 500, 0), 0, 'within the burst: granted now');
  assert.equal(q.withholdFetch(alice, 500, 0), 500, 'the subject bucket is the slower one');
  assert.equal(q.withholdFetch(alice, 300, 0), 800, 'behind the withheld one');
  // Above the burst: paid first (not let through from a full bucket as a large produce is).
  const carol: QuotaClient = { subject: 'carol', isAnonymous: false, ip: '10.0.0.9' };
  assert.equal(q.withholdFetch(carol, 10_000, 0), 9500, "carol's own buckets: 9,500 bytes beyond the subject burst at 1000 B/s");
  assert.equal(q.withholdFetch(alice, 100, 800), 100);
  assert.equal(q.snapshot().throttled.fetchBytes, 4);
});

test('property: bytes granted by any time t ≤ burst + rate × t, whatever the grants (none is bought early); any window ≤ max(burst, largest) + rate × window', () => {
  const rate = fc.record({ perSecond: fc.integer({ min: 1, max: 5000 }), burst: fc.integer({ min: 1, max: 5000 }) });
  const steps = fc.array(fc.record({ gapMs: fc.nat(300), bytes: fc.integer({ min: 1, max: 20_000 }) }), { minLength: 1, maxLength: 150 });
  fc.assert(fc.property(rate, steps, (r, s) => {
    const q = new QuotaManager({ perSubject: { fetchBytes: r } });
    let now = 0;
    const applied: { at: number; bytes: number }[] = [];
    for (const { gapMs, bytes } of s) {
      now += gapMs;
      applied.push({ at: now + q.withholdFetch(alice, bytes, now), bytes });
    }
    applied.sort((x, y) => x.at - y.at);
    // NB: + 1 ms of refill, as for reservations (whole-millisecond waits).
    let total = 0;
    for (const { at, bytes } of applied) {
      total += bytes;
      assert.ok(total <= r.burst + (r.perSecond * (at + 1)) / 1000, `by ${at} ms: ${total} bytes`);
    }
    for (let i = 0; i < applied.length; i++) {
      let sum = 0;
      let largest = 0;
      for (let j = i; j < applied.length; j++) {
        sum += applied[j].bytes;
        largest = Math.max(largest, applied[j].bytes);
        assert.ok(sum <= Math.max(r.burst, largest) + (r.perSecond * (applied[j].at - applied[i].at + 1)) / 1000, `window ${i}..${j}: ${sum}`);
      }
    }
  }), { numRuns: 500 });
});
