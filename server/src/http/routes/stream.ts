/**
 * Server-Sent Events: `GET /v1/topics/:topic/partitions/:p/stream?offset=`.
 * One event per record (`id: <offset>`, `data: <record JSON>`), a comment
 * line every `sseKeepAliveMs` while idle, resume from `Last-Event-ID`
 * (the next offset is id + 1, so a reconnecting EventSource gets no gap and
 * no duplicate), at most `maxSseStreams` open streams.
 *
 * Backpressure: the body is a pull stream; the uWS bridge pulls the next
 * chunk only after the previous one was written, so a slow client holds at
 * most one burst (`httpFetchRecords` records) in memory. The stream ends on
 * client abort; operating errors are sent as an `event: error` then end it.
 */
import { createRoute, z } from '@hono/zod-openapi';
import { RunnelError } from '@runnel/client/codec';
import { contextOf, type RouteContext } from '../route-context.ts';
import { errorResponse } from '../error-response.ts';
import type { JsonRecord } from '../record-json.ts';
import { readRecords, resolveOffset } from './records.ts';
import { errorResponses, OffsetQuery, PartitionParams } from './schemas.ts';

/** EventSource reconnect delay we ask browsers for. */
const RETRY_MS = 1000;

const streamRoute = createRoute({
  method: 'get', path: '/v1/topics/{topic}/partitions/{p}/stream', tags: ['records'],
  summary: 'Server-Sent Events stream of a partition (Last-Event-ID resumes)',
  request: {
    params: PartitionParams,
    query: z.object({ offset: OffsetQuery.optional().openapi({ description: 'Start offset, earliest or latest (default latest); Last-Event-ID wins' }) }),
  },
  responses: {
    200: { description: 'text/event-stream: `id: <offset>` + `data: <record JSON>` per record', content: { 'text/event-stream': { schema: { type: 'string' } } } },
    ...errorResponses(400, 404, 416, 429),
  },
});

const encoder = new TextEncoder();

function eventsOf(records: JsonRecord[]): Uint8Array {
  let text = '';
  for (const r of records) text += `id: ${r.offset}\ndata: ${JSON.stringify(r)}\n\n`;
  return encoder.encode(text);
}

function errorEvent(error: unknown): Uint8Array {
  const body = error instanceof RunnelError ? error.toJSON().error : { code: 'UNKNOWN_SERVER_ERROR', message: 'Unexpected broker error' };
  return encoder.encode(`event: error\ndata: ${JSON.stringify(body)}\n\n`);
}

export function registerStreamRoutes({ app, broker, limits, metrics, logError }: RouteContext): void {
  let openStreams = 0;

  app.openapi(streamRoute, async (c) => {
    const ctx = contextOf(c);
    const { topic, p } = c.req.valid('param');
    const lastEventId = c.req.header('last-event-id');
    if (lastEventId !== undefined && !/^\d{1,16}$/.test(lastEventId.trim())) {
      return errorResponse('INVALID_REQUEST', `Last-Event-ID must be a record offset, got '${lastEventId}'`);
    }
    if (openStreams >= limits.maxSseStreams) {
      return errorResponse('LIMIT_EXCEEDED', `maxSseStreams (${limits.maxSseStreams}) streams are open; retry later`);
    }
    const requested = lastEventId !== undefined ? Number(lastEventId) + 1 : c.req.valid('query').offset ?? 'latest';
    let offset = resolveOffset(broker, ctx, topic, p, requested);
    // Authorized before the stream opens (a refusal is a 403, not an error event inside a 200).
    await broker.waitForRecords(ctx, topic, p, offset, 0);

    const stop = new AbortController();
    const requestSignal = c.req.raw.signal;
    const onRequestAbort = () => stop.abort();
    requestSignal.addEventListener('abort', onRequestAbort);
    openStreams++;
    metrics.subscriptions.inc();
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      openStreams--;
      metrics.subscriptions.dec();
      requestSignal.removeEventListener('abort', onRequestAbort);
      stop.abort();
    };

    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(encoder.encode(`retry: ${RETRY_MS}\n: ${topic}/${p} from offset ${offset}\n\n`));
      },
      async pull(controller) {
        try {
          let read = await readRecords(broker, ctx, topic, p, offset, limits.httpFetchRecords, limits);
          if (read.records.length === 0 && !stop.signal.aborted) {
            await broker.waitForRecords(ctx, topic, p, read.nextOffset, limits.sseKeepAliveMs, stop.signal);
            if (!stop.signal.aborted) read = await readRecords(broker, ctx, topic, p, read.nextOffset, limits.httpFetchRecords, limits);
          }
          if (stop.signal.aborted) {
            release();
            controller.close();
            return;
          }
          offset = read.nextOffset;
          if (read.records.length === 0) {
            controller.enqueue(encoder.encode(': keep-alive\n\n'));
            return;
          }
          metrics.recordsOut.inc({ topic }, read.records.length);
          metrics.bytesOut.inc({ topic }, read.batchBytes);
          controller.enqueue(eventsOf(read.records));
        } catch (error) {
          if (!(error instanceof RunnelError)) logError?.(error);
          release();
          controller.enqueue(errorEvent(error));
          controller.close();
        }
      },
      cancel() {
        release();
      },
    }, { highWaterMark: 0 });

    return new Response(body, {
      status: 200,
      headers: { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', 'x-accel-buffering': 'no' },
    }) as never;
  });
}
