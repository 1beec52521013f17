/**
 * Topic administration: create, list, describe (per-partition leader,
 * replicas, ISR, logStartOffset, highWatermark), delete.
 */
import { createRoute, z } from '@hono/zod-openapi';
import { contextOf, type RouteContext } from '../route-context.ts';
import { errorResponses, PartitionInfoSchema, TopicInfoSchema, TopicParam } from './schemas.ts';

const CreateTopicBody = z.strictObject({
  name: z.string().min(1).openapi({ example: 'clicks' }),
  partitions: z.number().int().min(1).optional().openapi({ description: 'Default: the broker\'s defaultPartitions', example: 3 }),
  replicationFactor: z.number().int().min(1).optional().openapi({ description: 'Default: 1 on a single node; in a cluster --default-replication-factor, else min(3, live brokers)', example: 3 }),
  minInsyncReplicas: z.number().int().min(1).optional().openapi({ description: 'In-sync replicas an acks=all produce needs. Default: 1 on a single node; in a cluster --min-insync-replicas, else 2 when the replication factor is >= 3, else 1', example: 2 }),
  retentionMs: z.number().int().min(-1).optional().openapi({ description: '-1 = forever; default 7 days' }),
  retentionBytes: z.number().int().min(-1).optional().openapi({ description: 'Per partition; -1 = unbounded (default)' }),
}).openapi('CreateTopic');

const json = <T extends z.ZodType>(schema: T, description: string) => ({ description, content: { 'application/json': { schema } } });

const createTopic = createRoute({
  method: 'post', path: '/v1/topics', tags: ['topics'], summary: 'Create a topic',
  request: { body: { content: { 'application/json': { schema: CreateTopicBody } }, required: true } },
  responses: { 201: json(TopicInfoSchema, 'Created'), ...errorResponses(400, 409) },
});

const listTopics = createRoute({
  method: 'get', path: '/v1/topics', tags: ['topics'], summary: 'List topics',
  responses: { 200: json(z.object({ topics: z.array(TopicInfoSchema) }), 'Topics') },
});

const describeTopic = createRoute({
  method: 'get', path: '/v1/topics/{topic}', tags: ['topics'], summary: 'Describe a topic and its partitions',
  request: { params: TopicParam },
  responses: { 200: json(z.object({ topic: TopicInfoSchema, partitions: z.array(PartitionInfoSchema) }), 'Topic'), ...errorResponses(404) },
});

const deleteTopic = createRoute({
  method: 'delete', path: '/v1/topics/{topic}', tags: ['topics'], summary: 'Delete a topic and its data',
  request: { params: TopicParam },
  responses: { 200: json(z.object({ deleted: z.string() }), 'Deleted'), ...errorResponses(404) },
});

export function registerTopicRoutes({ app, broker }: RouteContext): void {
  app.openapi(createTopic, async (c) => {
    const body = c.req.valid('json');
    const info = await broker.createTopic(contextOf(c), {
      name: body.name,
      partitions: body.partitions ?? broker.config.defaultPartitions,
      ...(body.replicationFactor === undefined ? {} : { replicationFactor: body.replicationFactor }),
      ...(body.minInsyncReplicas === undefined ? {} : { minInsyncReplicas: body.minInsyncReplicas }),
      ...(body.retentionMs === undefined ? {} : { retentionMs: body.retentionMs }),
      ...(body.retentionBytes === undefined ? {} : { retentionBytes: body.retentionBytes }),
    });
    return c.json(info, 201);
  });
  app.openapi(listTopics, (c) => c.json({ topics: broker.listTopics(contextOf(c)) }, 200));
  app.openapi(describeTopic, (c) => c.json(broker.describeTopic(contextOf(c), c.req.valid('param').topic), 200));
  app.openapi(deleteTopic, async (c) => {
    const { topic } = c.req.valid('param');
    await broker.deleteTopic(contextOf(c), topic);
    return c.json({ deleted: topic }, 200);
  });
}
