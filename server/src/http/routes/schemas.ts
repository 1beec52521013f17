/**
 * zod schemas shared by the HTTP routes: path/query parameters and the
 * response shapes that appear in the OpenAPI document.
 */
import { z } from '@hono/zod-openapi';

export const ErrorSchema = z.object({
  error: z.object({ code: z.string().openapi({ example: 'UNKNOWN_TOPIC_OR_PARTITION' }), message: z.string() }),
}).openapi('Error');

/** Error responses documented on every route (their codes come from the shared ErrorTable). */
export function errorResponses(...statuses: number[]) {
  const out: Record<number, { description: string; content: { 'application/json': { schema: typeof ErrorSchema } } }> = {};
  for (const status of statuses) out[status] = { description: 'Error', content: { 'application/json': { schema: ErrorSchema } } };
  return out;
}

export const TopicParam = z.object({
  topic: z.string().min(1).openapi({ param: { name: 'topic', in: 'path' }, example: 'clicks' }),
});

/** Integer from a path or query string; rejects "1.5", "1e3", "" and negatives. */
export const intString = (what: string) => z.string().regex(/^\d{1,16}$/, `${what} must be a non-negative integer`).transform(Number);

export const PartitionParams = TopicParam.extend({
  p: intString('partition').openapi({ param: { name: 'p', in: 'path' }, example: '0' }),
});

/** `offset` query value: a number, or `earliest` / `latest`. */
export const OffsetQuery = z.union([z.enum(['earliest', 'latest']), intString('offset')]);

export const TopicInfoSchema = z.object({
  name: z.string(), topicId: z.string(), partitions: z.number().int(), replicationFactor: z.number().int(),
  retentionMs: z.number(), retentionBytes: z.number(), createdAtMs: z.number(),
}).openapi('TopicInfo');

/** One partition as the answering broker sees it (the metadata frame's PartitionMetadata plus logEndOffset). */
export const PartitionInfoSchema = z.object({
  partition: z.number().int(),
  leader: z.number().int().openapi({ description: 'Broker id of the leader; -1 while the partition has none (offline or electing)' }),
  leaderEpoch: z.number().int().openapi({ description: 'Bumped by every leader change; 0 on a single node' }),
  replicas: z.array(z.number().int()).openapi({ description: 'Assigned replicas, preferred leader first' }),
  isr: z.array(z.number().int()).openapi({ description: 'In-sync replicas (the leader included while online)' }),
  logStartOffset: z.number().int(),
  highWatermark: z.number().int().openapi({ description: 'Consumers see offsets below it; on a follower it may lag the leader\'s for a moment' }),
  logEndOffset: z.number().int().openapi({ description: 'The log end offset as this broker knows it' }),
}).openapi('PartitionInfo');

export const JsonRecordSchema = z.object({
  offset: z.number().int(), timestamp: z.number(), key: z.string().nullable(),
  value: z.any().openapi({ description: 'The stored JSON value; without valueEncoding any JSON, with it a string' }),
  headers: z.record(z.string(), z.string().nullable()),
  valueEncoding: z.enum(['text', 'base64']).optional().openapi({
    description: 'Only on a value that is not JSON within maxJsonDepth/maxJsonStringBytes: text = value is the stored UTF-8 text '
      + '(not JSON, too deep, or a string too long), base64 = the stored bytes are not UTF-8 and value is their base64',
  }),
}).openapi('Record');
