import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { authorize, Operations, type Operation, type ResourceOf } from './authorize.ts';
import type { RunnelClaimInput } from './claims.ts';
import { RunnelClaimSchema } from './claims.ts';
import { anonymousPrincipal, isPrincipalExpired, principalFromClaims, type Principal } from './principal.ts';

function principal(grants: RunnelClaimInput, sub = 'u1'): Principal {
  return principalFromClaims({ sub, exp: 2_000_000_000, runnel: RunnelClaimSchema.parse(grants) });
}

const user = principal({ publish: ['activity.*'], subscribe: ['dash.*', 'shared'], group: ['g-*'] });
const nobody = principal({});
const admin = principal({ admin: true });

type Row = { [O in Operation]: [Principal, O, ResourceOf[O], null | 'TOPIC_AUTHORIZATION_FAILED' | 'GROUP_AUTHORIZATION_FAILED' | 'CLUSTER_AUTHORIZATION_FAILED'] }[Operation];

const rows: Row[] = [
  // publish → produce + describe
  [user, 'produce', { topic: 'activity.clicks' }, null],
  [user, 'describe', { topic: 'activity.clicks' }, null],
  [user, 'fetch', { topic: 'activity.clicks' }, 'TOPIC_AUTHORIZATION_FAILED'],
  [user, 'subscribe', { topic: 'activity.clicks' }, 'TOPIC_AUTHORIZATION_FAILED'],
  // subscribe → fetch + subscribe + describe
  [user, 'fetch', { topic: 'dash.kpis' }, null],
  [user, 'subscribe', { topic: 'shared' }, null],
  [user, 'describe', { topic: 'dash.kpis' }, null],
  [user, 'produce', { topic: 'dash.kpis' }, 'TOPIC_AUTHORIZATION_FAILED'],
  [user, 'describe', { topic: 'secret' }, 'TOPIC_AUTHORIZATION_FAILED'],
  // cluster describe: any authenticated principal
  [nobody, 'describe', { cluster: true }, null],
  // create/delete: admin only
  [user, 'createTopic', { topic: 'activity.new' }, 'TOPIC_AUTHORIZATION_FAILED'],
  [user, 'deleteTopic', { topic: 'activity.clicks' }, 'TOPIC_AUTHORIZATION_FAILED'],
  [admin, 'createTopic', { topic: 'anything' }, null],
  [admin, 'deleteTopic', { topic: 'anything' }, null],
  // group → group ops on matching groups
  [user, 'groupJoin', { group: 'g-reports' }, null],
  [user, 'groupDescribe', { group: 'g-reports' }, null],
  [user, 'groupJoin', { group: 'reports' }, 'GROUP_AUTHORIZATION_FAILED'],
  [user, 'groupDescribe', { group: 'h-1' }, 'GROUP_AUTHORIZATION_FAILED'],
  // commit: group grant, then subscribe on the topic
  [user, 'groupCommit', { group: 'g-reports', topic: 'dash.kpis' }, null],
  [user, 'groupCommit', { group: 'g-reports', topic: 'activity.clicks' }, 'TOPIC_AUTHORIZATION_FAILED'],
  [user, 'groupCommit', { group: 'reports', topic: 'dash.kpis' }, 'GROUP_AUTHORIZATION_FAILED'],
  [user, 'groupCommit', { group: 'reports', topic: 'secret' }, 'GROUP_AUTHORIZATION_FAILED'],
  [user, 'groupCommit', { group: 'g-reports' }, null],
  [user, 'groupCommit', { group: 'reports' }, 'GROUP_AUTHORIZATION_FAILED'],
  // idempotent producer id: any publish grant (KIP-679)
  [user, 'initProducer', { cluster: true }, null],
  [principal({ subscribe: ['*'] }), 'initProducer', { cluster: true }, 'CLUSTER_AUTHORIZATION_FAILED'],
  // offset fetch: group grant, then describe on the topic when one is named
  [user, 'groupFetch', { group: 'g-reports' }, null],
  [user, 'groupFetch', { group: 'g-reports', topic: 'activity.clicks' }, null],
  [user, 'groupFetch', { group: 'g-reports', topic: 'secret' }, 'TOPIC_AUTHORIZATION_FAILED'],
  [user, 'groupFetch', { group: 'x' }, 'GROUP_AUTHORIZATION_FAILED'],
  // admin
  [user, 'admin', { cluster: true }, 'CLUSTER_AUTHORIZATION_FAILED'],
  [admin, 'admin', { cluster: true }, null],
  [admin, 'produce', { topic: 'x' }, null],
  [admin, 'groupCommit', { group: 'any', topic: 'any' }, null],
  // no grants: nothing but cluster describe
  [nobody, 'produce', { topic: 'x' }, 'TOPIC_AUTHORIZATION_FAILED'],
  [nobody, 'groupJoin', { group: 'g' }, 'GROUP_AUTHORIZATION_FAILED'],
  [nobody, 'admin', { cluster: true }, 'CLUSTER_AUTHORIZATION_FAILED'],
];

test('authorize: grant → operation table', () => {
  for (const [p, operation, resource, expected] of rows) {
    const result = authorize(p, operation, resource as never);
    const label = `${p.subject} ${operation} ${JSON.stringify(resource)}`;
    if (expected === null) assert.deepEqual(result, { ok: true }, label);
    else {
      assert.equal(result.ok, false, label);
      assert.equal(!result.ok && result.code, expected, label);
      assert.ok(!result.ok && result.message.startsWith('not authorized'), label);
    }
  }
});

test('every operation appears in the table', () => {
  assert.deepEqual(new Set(rows.map((r) => r[1])), new Set(Operations));
});

const resources: { [O in Operation]: fc.Arbitrary<ResourceOf[O]> } = (() => {
  const name = fc.stringMatching(/^[a-z.]{1,8}$/);
  const topic = name.map((t) => ({ topic: t }));
  return {
    produce: topic, fetch: topic, subscribe: topic, createTopic: topic, deleteTopic: topic,
    describe: fc.oneof(topic, fc.constant({ cluster: true as const })),
    groupJoin: name.map((g) => ({ group: g })), groupDescribe: name.map((g) => ({ group: g })),
    groupFetch: fc.tuple(name, fc.option(name, { nil: undefined })).map(([g, t]) => (t === undefined ? { group: g } : { group: g, topic: t })),
    groupCommit: fc.tuple(name, fc.option(name, { nil: undefined })).map(([g, t]) => (t === undefined ? { group: g } : { group: g, topic: t })),
    initProducer: fc.constant({ cluster: true as const }),
    admin: fc.constant({ cluster: true as const }),
  };
})();

const anyRequest = fc.constantFrom(...Operations).chain((op) => resources[op].map((r) => [op, r] as [Operation, ResourceOf[Operation]]));

test('property: the anonymous principal and admin may do everything', () => {
  fc.assert(fc.property(anyRequest, ([op, r]) => {
    assert.deepEqual(authorize(anonymousPrincipal(), op, r as never), { ok: true });
    assert.deepEqual(authorize(admin, op, r as never), { ok: true });
  }));
});

test('property: granting more never refuses more (monotonic in grants)', () => {
  const patterns = fc.array(fc.stringMatching(/^[a-z.*]{1,6}$/), { maxLength: 3 });
  const grants = fc.record({ publish: patterns, subscribe: patterns, group: patterns });
  fc.assert(fc.property(grants, grants, anyRequest, (a, b, [op, r]) => {
    const small = principal(a);
    const big = principal({ publish: [...a.publish, ...b.publish], subscribe: [...a.subscribe, ...b.subscribe], group: [...a.group, ...b.group] });
    if (authorize(small, op, r as never).ok) assert.ok(authorize(big, op, r as never).ok);
  }));
});

test('misuse (an operation on the wrong kind of resource) is an assertion, not a refusal', () => {
  assert.throws(() => authorize(user, 'produce', { group: 'g' } as never), /authorize\(produce\) applies to \{ topic \}/);
  assert.throws(() => authorize(user, 'admin', { topic: 'x' } as never), /authorize\(admin\) applies to \{ cluster: true \}/);
});

test('messages cap long client names', () => {
  const result = authorize(nobody, 'produce', { topic: 'x'.repeat(249) });
  assert.ok(!result.ok && result.message.length < 250);
});

test('a principal expires at exp; anonymous never', () => {
  assert.equal(isPrincipalExpired(user, 2_000_000_000_000 - 1), false);
  assert.equal(isPrincipalExpired(user, 2_000_000_000_000), true);
  assert.equal(isPrincipalExpired(anonymousPrincipal(), Number.MAX_SAFE_INTEGER), false);
});
