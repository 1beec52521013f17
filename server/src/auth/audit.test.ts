import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { SignJWT } from 'jose';
import { AuditLog, authenticationFailureEntry, authorizationFailureEntry, describeResource, formatAuditLine } from './audit.ts';
import { authorize } from './authorize.ts';
import { hs256Key } from './keys.ts';
import { AuthLimits } from './limits.ts';
import { principalFromClaims } from './principal.ts';
import { createTokenVerifier } from './verifier.ts';

const NOW_MS = 1_700_000_000_000;
const user = principalFromClaims({ sub: 'u1', exp: 2e9, runnel: { publish: [], subscribe: ['dash.*'], group: [], admin: false } });

test('an authorization failure line has the documented fields, in order', () => {
  const denied = authorize(user, 'produce', { topic: 'activity.x' });
  assert.ok(!denied.ok);
  const line = formatAuditLine(authorizationFailureEntry(user, 'produce', { topic: 'activity.x' }, denied.code, '203.0.113.9'), NOW_MS);
  assert.equal(line, '{"ts":"2023-11-14T22:13:20.000Z","event":"authorization_failed","subject":"u1","ip":"203.0.113.9","operation":"produce","resource":"topic:activity.x","code":"TOPIC_AUTHORIZATION_FAILED"}');
});

test('an authentication failure line names the failure, never the token', async () => {
  const secret = 'a-shared-secret-of-at-least-32-bytes!!';
  const verifier = createTokenVerifier({ keys: [hs256Key(secret, 's')] });
  const token = await new SignJWT({ sub: 'u1', runnel: {} }).setProtectedHeader({ alg: 'HS256' }).setExpirationTime(1).sign(new TextEncoder().encode(secret));
  const result = await verifier.verify(token, NOW_MS);
  assert.ok(!result.ok);
  const line = formatAuditLine(authenticationFailureEntry(result, '198.51.100.7'), NOW_MS);
  assert.deepEqual(JSON.parse(line), { ts: '2023-11-14T22:13:20.000Z', event: 'authentication_failed', subject: null, ip: '198.51.100.7', operation: 'authenticate', resource: null, code: 'SASL_AUTHENTICATION_FAILED', failure: 'expired' });
  for (const part of token.split('.')) assert.ok(!line.includes(part));
});

test('resources are described compactly and client names are capped and escaped', () => {
  assert.equal(describeResource({ cluster: true }), 'cluster');
  assert.equal(describeResource({ group: 'g' }), 'group:g');
  assert.equal(describeResource({ group: 'g', topic: 't' }), 'group:g/topic:t');
  const forged = 'x"\n{"event":"fake"}';
  const line = formatAuditLine(authorizationFailureEntry(user, 'groupJoin', { group: forged + 'y'.repeat(1000) }, 'GROUP_AUTHORIZATION_FAILED', '::1'), NOW_MS);
  assert.ok(!line.includes('\n'), 'one line');
  const parsed = JSON.parse(line);
  assert.equal(parsed.event, 'authorization_failed');
  assert.ok(parsed.resource.length <= 'group:'.length + AuthLimits.maxAuditFieldChars + 1);
});

test('a flood is bounded: at most maxLinesPerSec lines a second, the rest counted and summarised', () => {
  const lines: string[] = [];
  const counted: string[] = [];
  const log = new AuditLog({ write: (l) => lines.push(l), onEvent: (event, code) => counted.push(`${event}/${code}`), maxLinesPerSec: 3 });
  const entry = authorizationFailureEntry(user, 'produce', { topic: 't' }, 'TOPIC_AUTHORIZATION_FAILED', '10.0.0.1');
  const written = Array.from({ length: 10 }, (_, i) => log.record(entry, NOW_MS + i));
  assert.deepEqual(written, [true, true, true, false, false, false, false, false, false, false]);
  assert.equal(lines.length, 3);
  assert.equal(counted.length, 10, 'the counter hook sees every failure');
  assert.deepEqual(log.stats(), { written: 3, suppressed: 7 });
  log.flush(NOW_MS + 999);
  assert.equal(lines.length, 3, 'no summary within the window');
  log.flush(NOW_MS + 1000);
  assert.deepEqual(JSON.parse(lines[3]), { ts: '2023-11-14T22:13:21.000Z', event: 'audit_suppressed', count: 7, windowStartTs: '2023-11-14T22:13:20.000Z' });
  assert.equal(log.record(entry, NOW_MS + 1001), true, 'a new window writes again');
  log.flush(NOW_MS + 5000);
  assert.equal(lines.length, 5, 'no summary when nothing was suppressed');
});

test('property: over any run, lines per one-second window stay within the bound and every failure is counted', () => {
  fc.assert(fc.property(fc.array(fc.nat(400), { maxLength: 300 }), fc.integer({ min: 1, max: 10 }), (gaps, max) => {
    const log = new AuditLog({ write: () => {}, maxLinesPerSec: max });
    const writes: number[] = [];
    let now = NOW_MS;
    const entry = authorizationFailureEntry(user, 'fetch', { topic: 't' }, 'TOPIC_AUTHORIZATION_FAILED', 'ip');
    for (const gap of gaps) {
      now += gap;
      if (log.record(entry, now)) writes.push(now);
    }
    const { written, suppressed } = log.stats();
    assert.equal(written + suppressed, gaps.length);
    // Windows start at a failure and last 1 s, so any 1 s span overlaps at most two windows.
    for (let i = 0; i < writes.length; i++) {
      let j = i;
      while (j < writes.length && writes[j] - writes[i] < 1000) j++;
      assert.ok(j - i <= 2 * max);
    }
  }));
});
