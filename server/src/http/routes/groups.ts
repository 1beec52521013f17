/**
 * Consumer group offsets over HTTP: list groups, describe one (members,
 * generation, committed offsets and lag per partition), fetch committed
 * offsets, and commit offsets (standalone: generationId −1, memberId '';
 * a member may pass its own to have the generation checked).
 * Invariant: a commit answers only after the offsets are durable.
 * NB: describe never shows member ids: a member id is the member's only
 * credential for commits and heartbeats, so members are listed with a
 * one-way `displayId` instead (issue 11, finding 5).
 */
import { createRoute, z } from '@hono/zod-openapi';
import { contextOf, type RouteContext } from '../route-context.ts';
import { errorResponses } from './schemas.ts';

const GroupParam = z.object({ group: z.string().min(1).openapi({ param: { name: 'group', in: 'path' }, example: 'dashboard' }) });

const CommittedOffsetSchema = z.object({
  topic: z.string().min(1), partition: z.number().int().min(0), offset: z.number().int().min(0), metadata: z.string().max(4096).optional(),
}).openapi('CommittedOffset');

const GroupMemberSchema = z.object({
  displayId: z.string().openapi({ description: 'One-way digest of the member id, to tell members apart. The member id itself is a secret and never shown.', example: 'q3K9_xZa' }),
  clientId: z.string(),
  topics: z.array(z.string()),
  assignment: z.array(z.object({ topic: z.string(), partitions: z.array(z.number().int()) })),
}).openapi('GroupMember');

const GroupDescriptionSchema = z.object({
  group: z.string(),
  state: z.enum(['Empty', 'Stable']),
  generationId: z.number().int(),
  protocol: z.enum(['range', 'roundrobin']),
  members: z.array(GroupMemberSchema),
  offsets: z.array(z.object({
    topic: z.string(), partition: z.number().int(), offset: z.number().int(), metadata: z.string(),
    highWatermark: z.number().int().nullable(), lag: z.number().int().nullable(),
  })),
}).openapi('GroupDescription');

const CommitBody = z.strictObject({
  offsets: z.array(CommittedOffsetSchema).min(1).max(10_000),
  generationId: z.number().int().min(-1).optional().openapi({ description: 'Default -1 (standalone commit)' }),
  memberId: z.string().optional().openapi({ description: "Default '' (standalone commit)" }),
  rewind: z.boolean().optional().openapi({ description: 'A standalone commit may lower committed offsets (default false: 409 OFFSET_COMMIT_BACKWARDS)' }),
}).openapi('CommitOffsets');

const json = (schema: z.ZodType, description: string) => ({ description, content: { 'application/json': { schema } } });

const listGroups = createRoute({
  method: 'get', path: '/v1/groups', tags: ['groups'], summary: 'List consumer groups',
  responses: { 200: json(z.object({ groups: z.array(z.object({ group: z.string(), state: z.string(), members: z.number(), generationId: z.number() })) }), 'Groups') },
});

const describeGroup = createRoute({
  method: 'get', path: '/v1/groups/{group}', tags: ['groups'], summary: 'Members, generation, committed offsets and lag',
  request: { params: GroupParam },
  responses: { 200: json(GroupDescriptionSchema, 'Group'), ...errorResponses(400, 404) },
});

const fetchOffsets = createRoute({
  method: 'get', path: '/v1/groups/{group}/offsets', tags: ['groups'], summary: 'Committed offsets of a group',
  request: { params: GroupParam, query: z.object({ topic: z.string().min(1).optional() }) },
  responses: { 200: json(z.object({ offsets: z.array(CommittedOffsetSchema) }), 'Offsets'), ...errorResponses(400) },
});

const commitOffsets = createRoute({
  method: 'post', path: '/v1/groups/{group}/offsets', tags: ['groups'],
  summary: 'Commit offsets (durable before the answer); an offset above the partition\'s highWatermark is 416 OFFSET_OUT_OF_RANGE; a standalone commit lowering a committed offset without rewind is 409 OFFSET_COMMIT_BACKWARDS',
  request: { params: GroupParam, body: { content: { 'application/json': { schema: CommitBody } }, required: true } },
  responses: { 200: json(z.object({ committed: z.number() }), 'Committed'), ...errorResponses(400, 404, 409, 416, 429) },
});

export function registerGroupRoutes({ app, broker }: RouteContext): void {
  app.openapi(listGroups, async (c) => c.json({ groups: await broker.listGroups(contextOf(c)) }, 200));
  app.openapi(describeGroup, async (c) => c.json(await broker.describeGroup(contextOf(c), c.req.valid('param').group), 200));
  app.openapi(fetchOffsets, async (c) => {
    const { topic } = c.req.valid('query');
    return c.json({ offsets: await broker.fetchOffsets(contextOf(c), c.req.valid('param').group, topic === undefined ? undefined : [topic]) }, 200);
  });
  app.openapi(commitOffsets, async (c) => {
    const body = c.req.valid('json');
    const offsets = body.offsets.map((o) => ({ topic: o.topic, partition: o.partition, offset: o.offset, metadata: o.metadata ?? '' }));
    await broker.commitOffsets(contextOf(c), c.req.valid('param').group, body.generationId ?? -1, body.memberId ?? '', offsets, body.rewind);
    return c.json({ committed: offsets.length }, 200);
  });
}
