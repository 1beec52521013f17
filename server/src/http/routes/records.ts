/**
 * Produce over HTTP (`POST /v1/topics/:topic/records`: JSON, NDJSON,
 * text/plain beacons, or one binary RecordBatch) and long-poll fetch
 * (`GET /v1/topics/:topic/partitions/:p/records`).
 *
 * Invariant: a produce answers only after every batch of the request is
 * durable (`acks = -1`); offsets come back in request order. A fetch never
 * returns offsets at or above the high watermark.
 */
import { createRoute, z } from '@hono/zod-openapi';
import { RunnelError } from '@runnel/client/codec';
import { contextOf, type RouteContext } from '../route-context.ts';
import type { Limits } from '../../limits.ts';
import type { HttpBrokerApi } from '../../request/broker-api.ts';
import type { RequestContext } from '../../request/request-context.ts';
import { bodyFormatOf, parseProduceBody, planBatches, ProduceBodySchema, recordsFromBatches, type JsonRecord } from '../record-json.ts';
import { errorResponses, intString, JsonRecordSchema, OffsetQuery, PartitionParams, TopicParam } from './schemas.ts';

const OffsetsSchema = z.object({
  offsets: z.array(z.object({ partition: z.number().int(), offset: z.number().int() })),
  duplicate: z.boolean().optional().openapi({ description: 'Binary body only: the batch was already written (idempotent resend)' }),
}).openapi('ProduceResult');

const produceRoute = createRoute({
  method: 'post', path: '/v1/topics/{topic}/records', tags: ['records'],
  summary: 'Append records (JSON, NDJSON, text/plain beacon, or one binary RecordBatch with ?partition=)',
  request: {
    params: TopicParam,
    query: z.object({
      partition: intString('partition').optional().openapi({ description: 'Required for a binary RecordBatch body' }),
      producerSecret: z.string().max(256).optional().openapi({ description: 'Binary body of an idempotent producer: the secret issued with its producer id (or the x-runnel-producer-secret header)' }),
      access_token: z.string().optional().openapi({ description: 'Token, when the client cannot set Authorization (sendBeacon)' }),
    }),
    body: {
      required: true,
      // Plain schema objects (not zod) so the route parses every content type itself.
      content: {
        'application/json': { schema: z.toJSONSchema(ProduceBodySchema, { target: 'openapi-3.0', unrepresentable: 'any' }) as object },
        'application/x-ndjson': { schema: { type: 'string', description: 'One record object per line' } },
        'text/plain': { schema: { type: 'string', description: 'navigator.sendBeacon body: the JSON (or NDJSON) form' } },
        'application/vnd.runnel.recordbatch': { schema: { type: 'string', format: 'binary', description: 'One Kafka RecordBatch v2' } },
      },
    },
  },
  responses: { 200: { description: 'Durable', content: { 'application/json': { schema: OffsetsSchema } } }, ...errorResponses(400, 404, 409, 413, 415, 503) },
});

const fetchRoute = createRoute({
  method: 'get', path: '/v1/topics/{topic}/partitions/{p}/records', tags: ['records'],
  summary: 'Read records from an offset (long poll with maxWaitMs)',
  request: {
    params: PartitionParams,
    query: z.object({
      offset: OffsetQuery.optional().openapi({ description: 'Next offset wanted, or earliest|latest (default earliest)' }),
      maxRecords: intString('maxRecords').optional(),
      maxWaitMs: intString('maxWaitMs').optional().openapi({ description: 'Wait up to this long (capped by maxLongPollMs) when nothing is there yet' }),
    }),
  },
  responses: {
    200: {
      description: 'Records',
      content: { 'application/json': { schema: z.object({ records: z.array(JsonRecordSchema), nextOffset: z.number().int(), highWatermark: z.number().int(), logStartOffset: z.number().int() }) } },
    },
    ...errorResponses(400, 404, 416),
  },
});

/** Resolves `earliest`/`latest` and checks that the partition exists. */
export function resolveOffset(broker: HttpBrokerApi, ctx: RequestContext, topic: string, partition: number, offset: 'earliest' | 'latest' | number): number {
  const described = broker.describeTopic(ctx, topic);
  const info = described.partitions.find((p) => p.partition === partition);
  if (!info) throw new RunnelError('UNKNOWN_TOPIC_OR_PARTITION', `topic ${topic} has no partition ${partition} (it has ${described.partitions.length})`);
  if (offset === 'earliest') return info.logStartOffset;
  if (offset === 'latest') return info.highWatermark;
  return offset;
}

export interface ReadResult { records: JsonRecord[]; nextOffset: number; highWatermark: number; logStartOffset: number; batchBytes: number }

/**
 * One fetch + decode from `offset`; `nextOffset` is where the next read starts. A value that is not
 * JSON within maxJsonDepth/maxJsonStringBytes comes back degraded (`valueEncoding`), so one poison
 * record never fails the read of the records around it.
 */
export async function readRecords(broker: HttpBrokerApi, ctx: RequestContext, topic: string, partition: number, offset: number, maxRecords: number, limits: Limits): Promise<ReadResult> {
  const fetched = await broker.fetch(ctx, topic, partition, offset, limits.maxReadBytes);
  const decoded = recordsFromBatches(fetched.batches, offset, maxRecords, fetched.highWatermark, limits);
  if (!decoded.ok) throw new RunnelError('KAFKA_STORAGE_ERROR', `stored batch failed to decode: ${decoded.message}`);
  const { records, lastOffset } = decoded.value;
  // With nothing visible, skip past batches wholly below `offset` (never past the high watermark).
  const nextOffset = records.length > 0 ? lastOffset + 1 : Math.max(offset, Math.min(fetched.nextOffset, fetched.highWatermark));
  return { records, nextOffset, highWatermark: fetched.highWatermark, logStartOffset: fetched.logStartOffset, batchBytes: fetched.batches.byteLength };
}

let keylessCounter = 0;

export function registerRecordRoutes({ app, broker, limits, metrics }: RouteContext): void {
  app.openapi(produceRoute, async (c) => {
    const started = performance.now();
    const ctx = contextOf(c);
    const { topic } = c.req.valid('param');
    const { partition } = c.req.valid('query');
    const format = bodyFormatOf(c.req.header('content-type'));
    if (format === null) throw new RunnelError('INVALID_REQUEST', `unsupported Content-Type '${c.req.header('content-type')}'; use application/json, application/x-ndjson, text/plain or application/vnd.runnel.recordbatch`);
    const body = new Uint8Array(await c.req.arrayBuffer());
    if (body.byteLength > limits.maxHttpBodyBytes) throw new RunnelError('MESSAGE_TOO_LARGE', `request body exceeds maxHttpBodyBytes (${limits.maxHttpBodyBytes})`);
    const info = await broker.ensureTopic(ctx, topic);
    if (partition !== undefined && partition >= info.partitions) throw new RunnelError('UNKNOWN_TOPIC_OR_PARTITION', `topic ${topic} has no partition ${partition} (it has ${info.partitions})`);

    if (format === 'batch') {
      if (partition === undefined) throw new RunnelError('INVALID_REQUEST', 'a binary RecordBatch body needs ?partition=N');
      // The request layer validates the batch (every record, CRC, exactly one batch) once for every transport.
      // An idempotent batch (a frozen SDK beacon) proves its producer id with the secret issued with it;
      // sendBeacon cannot set headers, so the query parameter is accepted too.
      const producerSecret = c.req.header('x-runnel-producer-secret') ?? c.req.query('producerSecret') ?? '';
      const result = await broker.produce(ctx, topic, partition, body, -1, { secret: producerSecret });
      metrics.produceLatency.observe({ transport: 'http' }, (performance.now() - started) / 1000);
      return c.json({ offsets: [{ partition, offset: result.baseOffset }], duplicate: result.duplicate }, 200);
    }
    const records = parseProduceBody(format, body, limits);
    if (!records.ok) throw new RunnelError(records.code, records.message);
    if (partition !== undefined) for (const r of records.value) r.partition ??= partition;
    const planned = planBatches(records.value, info.partitions, keylessCounter++ % info.partitions, Date.now(), limits);
    if (!planned.ok) throw new RunnelError(planned.code, planned.message);
    const results = await broker.produceAll(ctx, topic, planned.value, -1);
    const offsets: { partition: number; offset: number }[] = new Array(records.value.length);
    planned.value.forEach((b, i) => b.indexes.forEach((recordIndex, j) => (offsets[recordIndex] = { partition: b.partition, offset: results[i].baseOffset + j })));
    metrics.produceLatency.observe({ transport: 'http' }, (performance.now() - started) / 1000);
    return c.json({ offsets }, 200);
  });

  app.openapi(fetchRoute, async (c) => {
    const ctx = contextOf(c);
    const { topic, p } = c.req.valid('param');
    const q = c.req.valid('query');
    const maxRecords = Math.min(q.maxRecords ?? limits.httpFetchRecords, limits.maxHttpRecords);
    if (maxRecords < 1) throw new RunnelError('INVALID_REQUEST', 'maxRecords must be >= 1');
    const waitMs = Math.min(q.maxWaitMs ?? 0, limits.maxLongPollMs);
    const deadline = performance.now() + waitMs;
    let offset = resolveOffset(broker, ctx, topic, p, q.offset ?? 'earliest');
    const signal = c.req.raw.signal;
    for (;;) {
      const read = await readRecords(broker, ctx, topic, p, offset, maxRecords, limits);
      const remainingMs = deadline - performance.now();
      if (read.records.length > 0 || remainingMs <= 0 || signal.aborted) {
        if (read.records.length > 0) {
          metrics.recordsOut.inc({ topic }, read.records.length);
          metrics.bytesOut.inc({ topic }, read.batchBytes);
        }
        return c.json({ records: read.records, nextOffset: read.nextOffset, highWatermark: read.highWatermark, logStartOffset: read.logStartOffset }, 200);
      }
      offset = read.nextOffset;
      await broker.waitForRecords(ctx, topic, p, offset, Math.ceil(remainingMs), signal);
    }
  });
}
