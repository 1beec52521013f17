/**
 * Client settings are checked when the client is created: values and
 * combinations that cannot work are refused with INVALID_REQUEST naming the
 * setting and the bound; unset (or undefined) settings keep their defaults.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createClient, type ClientOptions } from './client.ts';
import { FakeBroker } from './fake-broker.ts';
import { createGroupConsumer } from './group-consumer.ts';
import { defaultClientLimits, defaultConnectionTimeouts, defaultReconnect, MAX_TIMER_MS, validateClientSettings, validateGroupTimeouts } from './limits.ts';
import { seededRandom } from './reconnect-policy.ts';

const base: ClientOptions = { urls: 'ws://fake/v1/ws', transport: new FakeBroker(1).transport, random: seededRandom(3), beacon: false };

/** createClient(options) throws INVALID_REQUEST whose message matches every pattern. */
function refused(options: Partial<ClientOptions>, ...patterns: RegExp[]): void {
  assert.throws(() => createClient({ ...base, ...options }), (e: any) => {
    assert.equal(e?.name, 'RunnelError');
    assert.equal(e.errorName, 'INVALID_REQUEST');
    for (const p of patterns) assert.match(e.message, p);
    return true;
  });
}

test('defaults validate, and undefined settings keep them', () => {
  assert.deepEqual(validateClientSettings(), { limits: defaultClientLimits, timeouts: defaultConnectionTimeouts, reconnect: defaultReconnect });
  const s = validateClientSettings({ limits: { lingerMs: undefined, maxBatchRecords: 7 }, timeouts: { requestTimeoutMs: undefined } });
  assert.equal(s.limits.lingerMs, defaultClientLimits.lingerMs);
  assert.equal(s.limits.maxBatchRecords, 7);
  assert.equal(s.timeouts.requestTimeoutMs, 30_000, 'the documented default stays 30 s');
  assert.equal(s.timeouts.pingIntervalMs, 15_000, 'the documented default stays 15 s');
  assert.equal(s.timeouts.connectTimeoutMs, 10_000);
  const c = createClient({ ...base, requestTimeoutMs: 5_000, pingIntervalMs: 1_000, limits: { lingerMs: 0 } });
  void c.close();
});

test('single values that cannot work are refused with the setting and its bound', () => {
  refused({ limits: { maxBatchRecords: 0 } }, /maxBatchRecords must be >= 1, got 0/);
  refused({ limits: { maxOutboxRecords: 0 } }, /maxOutboxRecords must be >= 1/);
  refused({ limits: { creditWindowBytes: 100 } }, /creditWindowBytes must be >= 1024, got 100/);
  refused({ limits: { lingerMs: -1 } }, /lingerMs must be >= 0/);
  refused({ limits: { maxOutboxBytes: Number.POSITIVE_INFINITY } }, /maxOutboxBytes/);
  refused({ limits: { retryBackoffMs: Number.NaN } }, /retryBackoffMs .*got NaN/);
  refused({ requestTimeoutMs: 0 }, /requestTimeoutMs must be >= 1/);
  refused({ pingIntervalMs: 0 }, /pingIntervalMs must be >= 1/);
  refused({ reconnect: { multiplier: 0.5 } }, /multiplier must be >= 1/);
  refused({ reconnect: { initialDelayMs: 0, maxDelayMs: 10 } }, /initialDelayMs must be >= 1/);
});

test('timeouts past what timers honour are refused (they would fire at once)', () => {
  refused({ requestTimeoutMs: MAX_TIMER_MS + 1 }, new RegExp(`requestTimeoutMs must be >= 1 and <= ${MAX_TIMER_MS}`));
  refused({ limits: { orphanCheckMs: 2 ** 32 } }, /orphanCheckMs/);
  void createClient({ ...base, requestTimeoutMs: MAX_TIMER_MS }).close();
});

test('combinations that cannot work are refused, every problem at once', () => {
  refused({ limits: { maxBatchBytes: 2048, maxOutboxBytes: 1024 } }, /maxOutboxBytes must be >= maxBatchBytes \(2048\), got 1024/);
  refused({ reconnect: { initialDelayMs: 500, maxDelayMs: 100 } }, /maxDelayMs must be >= initialDelayMs \(500\) and <= \d+, got 100/);
  refused({ limits: { maxBatchRecords: 0 }, pingIntervalMs: -5 }, /maxBatchRecords/, /pingIntervalMs/);
});

test('group timeouts: a heartbeat that does not fit in the session is refused with the fix', () => {
  assert.deepEqual(validateGroupTimeouts(), { sessionTimeoutMs: 10_000, heartbeatIntervalMs: 3_333 });
  assert.deepEqual(validateGroupTimeouts(30), { sessionTimeoutMs: 30, heartbeatIntervalMs: 10 }, 'at least 10 ms by default');
  const c = createClient(base);
  try {
    const make = (o: { sessionTimeoutMs?: number; heartbeatIntervalMs?: number }) => () => createGroupConsumer(c, { group: 'g', topics: ['t'], handler: () => {}, ...o });
    assert.throws(make({ sessionTimeoutMs: 6_000, heartbeatIntervalMs: 6_000 }), (e: any) => e.errorName === 'INVALID_REQUEST' && /heartbeatIntervalMs \(6000\) must be < sessionTimeoutMs \(6000\)/.test(e.message));
    assert.throws(make({ heartbeatIntervalMs: 0 }), (e: any) => e.errorName === 'INVALID_REQUEST' && /heartbeatIntervalMs must be in 10\.\./.test(e.message));
    assert.throws(make({ sessionTimeoutMs: 0 }), (e: any) => e.errorName === 'INVALID_REQUEST' && /sessionTimeoutMs/.test(e.message));
  } finally {
    void c.close();
  }
});
