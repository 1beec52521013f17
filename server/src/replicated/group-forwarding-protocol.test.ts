/**
 * The group forwarding codec: every request and answer round-trips; an
 * error answer carries the coordinator's code and message; any bytes decode
 * to a value or a RunnelError, never another throw; schema violations are
 * INVALID_REQUEST.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { RunnelError } from '@runnel/client/codec';
import {
  GroupForwardType, decodeGroupAnswer, decodeGroupRequest, encodeGroupAnswer, encodeGroupError, encodeGroupRequest,
  type GroupAnswers, type GroupForwardTypeId, type GroupRequest,
} from './group-forwarding-protocol.ts';

const frame = { type: 'groupAssignment' as const, requestId: 4, group: 'g', memberId: 'm', generationId: 3, errorCode: 0, assignments: [{ topic: 't', partitions: [0, 2] }] };

const requests: { [T in GroupForwardTypeId]: GroupRequest<T> } = {
  [GroupForwardType.join]: { sinkKey: 'abc.1', requestId: 4, group: 'g', memberId: '', clientId: 'c', topics: ['t', 'u'], sessionTimeoutMs: 10_000 },
  [GroupForwardType.heartbeat]: { group: 'g', memberId: 'm', generationId: 3 },
  [GroupForwardType.leave]: { group: 'g', memberId: 'm' },
  [GroupForwardType.commit]: { group: 'g', generationId: -1, memberId: '', offsets: [{ topic: 't', partition: 1, offset: 2 ** 40, metadata: 'x' }] },
  [GroupForwardType.fetch]: { group: 'g', topics: ['t'] },
  [GroupForwardType.describe]: { group: 'g' },
  [GroupForwardType.list]: {},
  [GroupForwardType.deleteTopic]: { topic: 't', partition: 3 },
  [GroupForwardType.push]: { sinkKey: 'abc.1', frame },
};

const answers: { [T in GroupForwardTypeId]: GroupAnswers[T] } = {
  [GroupForwardType.join]: frame,
  [GroupForwardType.heartbeat]: { errorCode: 22 },
  [GroupForwardType.leave]: {},
  [GroupForwardType.commit]: {},
  [GroupForwardType.fetch]: { offsets: [{ topic: 't', partition: 0, offset: 5, metadata: '' }] },
  [GroupForwardType.describe]: {
    group: 'g', state: 'Stable', generationId: 2, protocol: 'range',
    members: [{ displayId: 'd', clientId: 'c', topics: ['t'], assignment: [{ topic: 't', partitions: [0] }] }],
    offsets: [{ topic: 't', partition: 0, offset: 5, metadata: '', highWatermark: 9, lag: 4 }, { topic: 't', partition: 1, offset: 0, metadata: '', highWatermark: null, lag: null }],
  },
  [GroupForwardType.list]: { groups: [{ group: 'g', state: 'Empty', members: 0, generationId: 0 }] },
  [GroupForwardType.deleteTopic]: {},
  [GroupForwardType.push]: { delivered: true },
};

const types = Object.values(GroupForwardType);

test('every group request and answer round-trips', () => {
  for (const type of types) {
    assert.deepEqual(decodeGroupRequest(type, encodeGroupRequest(type, requests[type] as never)), requests[type], `request ${type}`);
    assert.deepEqual(decodeGroupAnswer(type, encodeGroupAnswer(type, answers[type] as never)), answers[type], `answer ${type}`);
  }
});

test("an error answer throws the coordinator's code and message, for every type", () => {
  const bytes = encodeGroupError(new RunnelError('ILLEGAL_GENERATION', 'generation 3 is stale'));
  for (const type of types) {
    assert.throws(() => decodeGroupAnswer(type, bytes), (e: unknown) => e instanceof RunnelError && e.errorName === 'ILLEGAL_GENERATION' && e.message === 'generation 3 is stale');
  }
});

test('bodies outside the schema are INVALID_REQUEST', () => {
  const bad: [GroupForwardTypeId, unknown][] = [
    [GroupForwardType.heartbeat, { group: 'g', memberId: 'm' }],
    [GroupForwardType.commit, { group: 'g', generationId: -1, memberId: '', offsets: [{ topic: 't', partition: 0, offset: -1, metadata: '' }] }],
    [GroupForwardType.commit, { group: 'g', generationId: -1, memberId: '', offsets: [{ topic: 't', partition: 0, offset: 1.5, metadata: '' }] }],
    [GroupForwardType.join, { ...requests[GroupForwardType.join], topics: 'all' }],
    [GroupForwardType.push, { sinkKey: 'k', frame: { ...frame, type: 'records' } }],
  ];
  for (const [type, body] of bad) {
    assert.throws(() => decodeGroupRequest(type, new TextEncoder().encode(JSON.stringify(body))), (e: unknown) => e instanceof RunnelError && e.errorName === 'INVALID_REQUEST', JSON.stringify(body));
  }
});

test('any bytes decode to a value or a RunnelError, never another throw', () => {
  fc.assert(fc.property(fc.oneof(fc.uint8Array({ maxLength: 64 }), fc.json().map((j) => new TextEncoder().encode(j))), fc.constantFrom(...types), fc.boolean(), (bytes, type, asAnswer) => {
    try {
      if (asAnswer) decodeGroupAnswer(type, bytes);
      else decodeGroupRequest(type, bytes);
    } catch (e) {
      assert.ok(e instanceof RunnelError, `threw ${String(e)}`);
    }
  }), { numRuns: 3000 });
});
