/**
 * The etcd key layout under the cluster prefix (docs/cluster.md "What lives
 * where") and the one decoder of each value. etcd is a boundary: every value
 * read is validated here, once; a value that does not decode is reported
 * and treated as absent, never half-used.
 */
import { z } from 'zod';
import type { TopicInfo } from '../metadata/topic-info.ts';
import type { BrokerEndpoint, PartitionLeadership } from './cluster-state.ts';

/** Relative keys (the connection adds `<prefix>/`). */
export const ClusterKeys = {
  broker: (id: number) => `brokers/${id}`,
  brokers: 'brokers/',
  topic: (name: string) => `topics/${name}`,
  topics: 'topics/',
  partition: (topicId: string, partition: number) => `partitions/${topicId}/${partition}`,
  partitionsOf: (topicId: string) => `partitions/${topicId}/`,
  partitions: 'partitions/',
  /** etcd3's election namespace: `election/<name>/<lease id>`, value = broker id. */
  controllerElection: 'election/controller/',
  producerIdNextBlock: 'producer-ids/next-block',
  producerIdKey: 'producer-id-key',
} as const;

export type ParsedKey =
  | { kind: 'topic'; name: string }
  | { kind: 'partition'; topicId: string; partition: number }
  | { kind: 'broker'; id: number }
  | { kind: 'controller-candidate'; lease: string }
  | { kind: 'other' };

const INT = /^(0|[1-9][0-9]{0,9})$/;

/** What a relative key names. */
export function parseKey(relative: string): ParsedKey {
  if (relative.startsWith(ClusterKeys.topics)) return { kind: 'topic', name: relative.slice(ClusterKeys.topics.length) };
  if (relative.startsWith(ClusterKeys.partitions)) {
    const [topicId, partition, ...rest] = relative.slice(ClusterKeys.partitions.length).split('/');
    if (rest.length === 0 && topicId && partition !== undefined && INT.test(partition)) return { kind: 'partition', topicId, partition: Number(partition) };
    return { kind: 'other' };
  }
  if (relative.startsWith(ClusterKeys.brokers)) {
    const id = relative.slice(ClusterKeys.brokers.length);
    return INT.test(id) ? { kind: 'broker', id: Number(id) } : { kind: 'other' };
  }
  if (relative.startsWith(ClusterKeys.controllerElection)) return { kind: 'controller-candidate', lease: relative.slice(ClusterKeys.controllerElection.length) };
  return { kind: 'other' };
}

const brokerIdSchema = z.number().int().min(0).max(2 ** 31 - 1);

const topicSchema = z.object({
  name: z.string().min(1),
  topicId: z.string().min(1).regex(/^[^/]+$/),
  partitions: z.number().int().min(1),
  replicationFactor: z.number().int().min(1),
  retentionMs: z.number().int(),
  retentionBytes: z.number().int(),
  createdAtMs: z.number().int(),
  minInsyncReplicas: z.number().int().min(1).optional(),
}).loose();

const leadershipSchema = z.object({
  leader: z.number().int().min(-1),
  leaderEpoch: z.number().int().min(0),
  isr: z.array(brokerIdSchema),
  replicas: z.array(brokerIdSchema).min(1),
});

const brokerSchema = z.object({
  id: brokerIdSchema,
  clientUrl: z.string(),
  replicationHost: z.string().min(1),
  replicationPort: z.number().int().min(1).max(65535),
  startedAtMs: z.number().int(),
  leaseId: z.string().regex(/^[0-9]+$/),
});

export type Decoded<T> = { ok: true; value: T } | { ok: false; problem: string };

function decode<T>(schema: z.ZodType<T>, text: string): Decoded<T> {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    return { ok: false, problem: `not JSON: ${(e as Error).message}` };
  }
  const parsed = schema.safeParse(json);
  return parsed.success ? { ok: true, value: parsed.data } : { ok: false, problem: parsed.error.message };
}

export function decodeTopic(text: string): Decoded<TopicInfo> {
  return decode(topicSchema, text) as Decoded<TopicInfo>;
}

/** Only the fields of `PartitionLeadership`, in a fixed order (one value per state). */
export function encodeLeadership(l: PartitionLeadership): string {
  return JSON.stringify({ leader: l.leader, leaderEpoch: l.leaderEpoch, isr: l.isr, replicas: l.replicas });
}

export function decodeLeadership(text: string): Decoded<PartitionLeadership> {
  return decode(leadershipSchema, text);
}

export function decodeBroker(text: string): Decoded<BrokerEndpoint> {
  return decode(brokerSchema, text);
}
