/**
 * Liveness (`/healthz`: the process answers), readiness (`/readyz`: 503
 * until the broker has recovered its logs and listens) and Prometheus
 * metrics (`/metrics`, text format). Registers the consumer-lag collector:
 * lag is computed at scrape time, never on the produce path.
 */
import { createRoute, z } from '@hono/zod-openapi';
import { largestLags } from '../../groups/consumer-lag.ts';
import type { RouteContext } from '../route-context.ts';
import { errorResponse } from '../error-response.ts';

const healthz = createRoute({
  method: 'get', path: '/healthz', tags: ['operations'], summary: 'Liveness',
  responses: { 200: { description: 'Alive', content: { 'application/json': { schema: z.object({ status: z.literal('ok') }) } } } },
});

const readyz = createRoute({
  method: 'get', path: '/readyz', tags: ['operations'], summary: 'Readiness (503 while starting or shutting down)',
  responses: {
    200: { description: 'Ready; `warnings` lists insecure settings (e.g. --insecure)', content: { 'application/json': { schema: z.object({ status: z.literal('ready'), warnings: z.array(z.string()).optional() }) } } },
    503: { description: 'Not ready', content: { 'application/json': { schema: z.object({}).passthrough() } } },
  },
});

const metricsRoute = createRoute({
  method: 'get', path: '/metrics', tags: ['operations'], summary: 'Prometheus metrics',
  responses: { 200: { description: 'Prometheus text exposition format', content: { 'text/plain': { schema: { type: 'string' } } } } },
});

export function registerHealthRoutes({ app, broker, metrics, limits, isReady, warnings = [] }: RouteContext): void {
  // The one filler of runnel_consumer_lag (reset before each scrape): the largest maxLagSeries lags only.
  metrics.onCollect(() => {
    for (const l of largestLags(broker.consumerLag(), limits.maxLagSeries)) metrics.consumerLag.set({ group: l.group, topic: l.topic, partition: String(l.partition) }, l.lag);
  });
  app.openapi(healthz, (c) => c.json({ status: 'ok' as const }, 200));
  app.openapi(readyz, (c) => (isReady() ? c.json({ status: 'ready' as const, ...(warnings.length > 0 ? { warnings: [...warnings] } : {}) }, 200) : (errorResponse('SHUTTING_DOWN', 'broker is not ready (starting or shutting down)', 503) as never)));
  app.openapi(metricsRoute, async (c) => {
    const text = await metrics.registry.metrics();
    return c.body(text, 200, { 'content-type': metrics.registry.contentType }) as never;
  });
}
