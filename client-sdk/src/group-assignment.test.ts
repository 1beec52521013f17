/** planAssignment: table of the assignment cases a group member meets. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { GroupAssignmentFrame } from './codec/protocol.ts';
import { planAssignment } from './group-assignment.ts';

const frame = (generationId: number, partitions: number[], errorCode = 0): GroupAssignmentFrame =>
  ({ type: 'groupAssignment', requestId: 0, group: 'g', memberId: 'm1', generationId, errorCode, assignments: [{ topic: 't', partitions }] });
const tps = (...ps: number[]) => ps.map((partition) => ({ topic: 't', partition }));

test('planAssignment', () => {
  const cases: [string, number, number[], GroupAssignmentFrame, unknown][] = [
    ['first assignment: all added', -1, [], frame(1, [2, 0]), { kind: 'rebalance', generationId: 1, memberId: 'm1', added: tps(0, 2), revoked: [], kept: [] }],
    ['rebalance: some move', 1, [0, 2], frame(2, [2, 3]), { kind: 'rebalance', generationId: 2, memberId: 'm1', added: tps(3), revoked: tps(0), kept: tps(2) }],
    ['same generation (heartbeat re-send): ignore', 2, [2, 3], frame(2, [2, 3]), { kind: 'ignore' }],
    ['older generation (late push): ignore', 3, [1], frame(2, [0, 1]), { kind: 'ignore' }],
    ['session timed out (25): rejoin', 3, [1], frame(-1, [], 25), { kind: 'rejoin', errorCode: 25 }],
    ['everything revoked', 3, [1, 4], frame(4, []), { kind: 'rebalance', generationId: 4, memberId: 'm1', added: [], revoked: tps(1, 4), kept: [] }],
  ];
  for (const [name, generation, owned, f, expected] of cases) assert.deepEqual(planAssignment(generation, tps(...owned), f), expected, name);
});
