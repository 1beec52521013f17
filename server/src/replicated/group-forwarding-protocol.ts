/**
 * Group requests between brokers (docs/replication-protocol.md, "Group
 * requests"; docs/groups.md "Groups in a cluster"): a broker forwards a
 * connected member's or an HTTP client's group request to the group's
 * coordinator, and the coordinator pushes assignments back to the broker the
 * member is connected to. Pure codec: bytes in, typed values or a
 * RunnelError out.
 *
 * Bodies are JSON (group requests are control-plane traffic: a heartbeat per
 * member every few seconds, a commit per handled frame), validated once
 * here by zod; a body that does not parse is INVALID_REQUEST, never a throw
 * of another kind. Answers reuse forward-protocol.ts's framing: `u8 1 | JSON`
 * for a value, `u8 0 | i16 code | str message` for an error, so the
 * coordinator's RunnelError reaches the client as it was.
 */
import { RunnelError, errorNameOf, type CommittedOffset, type GroupAssignmentFrame } from '@runnel/client/codec';
import { z } from 'zod';
import type { GroupDescription, GroupSummary } from '../groups/group-service.ts';
import { encodeErrorAnswer } from './forward-protocol.ts';

/** Request types on the internal protocol (the partition forwards use 100–104). */
export const GroupForwardType = {
  join: 110, heartbeat: 111, leave: 112, commit: 113, fetch: 114, describe: 115, list: 116, deleteTopic: 117,
  /** Coordinator → the member's broker: an assignment (or an error assignment) for a connection there. */
  push: 118,
} as const;

const name = z.string().max(1024);
const offset = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);
const Committed = z.object({ topic: name, partition: z.number().int().min(0), offset, metadata: z.string().max(65_536) });
const Assignment = z.object({
  type: z.literal('groupAssignment'), requestId: z.number().int().min(0), group: name, memberId: name,
  generationId: z.number().int(), errorCode: z.number().int(),
  assignments: z.array(z.object({ topic: name, partitions: z.array(z.number().int().min(0)) })),
});

/** Every request body, by type. `sinkKey` names the member's connection on the broker that sent the join. */
export const GroupRequestSchemas = {
  [GroupForwardType.join]: z.object({
    sinkKey: name, requestId: z.number().int().min(0), group: name, memberId: name, clientId: z.string().max(1024),
    topics: z.array(name).max(10_000), sessionTimeoutMs: z.number().int().min(0),
  }),
  [GroupForwardType.heartbeat]: z.object({ group: name, memberId: name, generationId: z.number().int() }),
  [GroupForwardType.leave]: z.object({ group: name, memberId: name }),
  [GroupForwardType.commit]: z.object({ group: name, generationId: z.number().int(), memberId: name, offsets: z.array(Committed).max(100_000), deadlineMs: z.number().int().min(0).optional(), rewind: z.boolean().optional() }),
  [GroupForwardType.fetch]: z.object({ group: name, topics: z.array(name).max(10_000).optional() }),
  [GroupForwardType.describe]: z.object({ group: name }),
  [GroupForwardType.list]: z.object({}),
  [GroupForwardType.deleteTopic]: z.object({ topic: name, partition: z.number().int().min(0) }),
  [GroupForwardType.push]: z.object({ sinkKey: name, frame: Assignment }),
} as const;

export type GroupForwardTypeId = (typeof GroupForwardType)[keyof typeof GroupForwardType];
export type GroupRequest<T extends GroupForwardTypeId> = z.infer<(typeof GroupRequestSchemas)[T]>;

/** What each request answers. */
export interface GroupAnswers {
  [GroupForwardType.join]: GroupAssignmentFrame;
  [GroupForwardType.heartbeat]: { errorCode: number };
  [GroupForwardType.leave]: Record<string, never>;
  [GroupForwardType.commit]: Record<string, never>;
  [GroupForwardType.fetch]: { offsets: CommittedOffset[] };
  [GroupForwardType.describe]: GroupDescription;
  [GroupForwardType.list]: { groups: GroupSummary[] };
  [GroupForwardType.deleteTopic]: Record<string, never>;
  /** `delivered: false`: the connection is gone from that broker (the coordinator ends its memberships). */
  [GroupForwardType.push]: { delivered: boolean };
}

const AnswerSchemas: { [T in GroupForwardTypeId]: z.ZodType } = {
  [GroupForwardType.join]: Assignment,
  [GroupForwardType.heartbeat]: z.object({ errorCode: z.number().int() }),
  [GroupForwardType.leave]: z.object({}),
  [GroupForwardType.commit]: z.object({}),
  [GroupForwardType.fetch]: z.object({ offsets: z.array(Committed) }),
  [GroupForwardType.describe]: z.object({
    group: name, state: z.enum(['Empty', 'Stable']), generationId: z.number().int(), protocol: z.enum(['range', 'roundrobin']),
    members: z.array(z.object({
      displayId: z.string(), clientId: z.string(), topics: z.array(name),
      assignment: z.array(z.object({ topic: name, partitions: z.array(z.number().int()) })),
    })),
    offsets: z.array(Committed.extend({ highWatermark: z.number().int().nullable(), lag: z.number().int().nullable() })),
  }),
  [GroupForwardType.list]: z.object({ groups: z.array(z.object({ group: name, state: z.enum(['Empty', 'Stable']), members: z.number().int(), generationId: z.number().int() })) }),
  [GroupForwardType.deleteTopic]: z.object({}),
  [GroupForwardType.push]: z.object({ delivered: z.boolean() }),
};

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });

function parseJson(bytes: Uint8Array, what: string): unknown {
  try {
    return JSON.parse(decoder.decode(bytes));
  } catch {
    throw new RunnelError('INVALID_REQUEST', `${what}: not UTF-8 JSON`);
  }
}

export function encodeGroupRequest<T extends GroupForwardTypeId>(_type: T, body: GroupRequest<T>): Uint8Array {
  return encoder.encode(JSON.stringify(body));
}

/** The validated body; INVALID_REQUEST for anything else. */
export function decodeGroupRequest<T extends GroupForwardTypeId>(type: T, bytes: Uint8Array): GroupRequest<T> {
  const parsed = GroupRequestSchemas[type].safeParse(parseJson(bytes, `group request ${type}`));
  if (!parsed.success) throw new RunnelError('INVALID_REQUEST', `group request ${type}: ${parsed.error.issues[0]?.message ?? 'invalid'} at ${parsed.error.issues[0]?.path.join('.') ?? ''}`);
  return parsed.data as GroupRequest<T>;
}

export function encodeGroupAnswer<T extends GroupForwardTypeId>(_type: T, answer: GroupAnswers[T]): Uint8Array {
  const json = encoder.encode(JSON.stringify(answer));
  const out = new Uint8Array(1 + json.length);
  out[0] = 1;
  out.set(json, 1);
  return out;
}

/** An error answer (the same framing as forwarded partition requests). */
export const encodeGroupError = encodeErrorAnswer;

/** The answer, or the coordinator's RunnelError thrown; INVALID_REQUEST for bytes that are neither. */
export function decodeGroupAnswer<T extends GroupForwardTypeId>(type: T, bytes: Uint8Array): GroupAnswers[T] {
  if (bytes.length < 1) throw new RunnelError('INVALID_REQUEST', `group answer ${type}: empty`);
  if (bytes[0] === 0) {
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    if (bytes.length < 5) throw new RunnelError('INVALID_REQUEST', `group answer ${type}: truncated error`);
    const code = view.getInt16(1);
    const n = view.getUint16(3);
    let message = '';
    try {
      message = decoder.decode(bytes.subarray(5, 5 + n));
    } catch {
      message = '(message not UTF-8)';
    }
    throw new RunnelError(errorNameOf(code), message);
  }
  if (bytes[0] !== 1) throw new RunnelError('INVALID_REQUEST', `group answer ${type}: tag ${bytes[0]}`);
  const parsed = AnswerSchemas[type].safeParse(parseJson(bytes.subarray(1), `group answer ${type}`));
  if (!parsed.success) throw new RunnelError('INVALID_REQUEST', `group answer ${type}: ${parsed.error.issues[0]?.message ?? 'invalid'} at ${parsed.error.issues[0]?.path.join('.') ?? ''}`);
  return parsed.data as GroupAnswers[T];
}
