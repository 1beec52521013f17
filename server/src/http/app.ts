/**
 * The HTTP API: one OpenAPIHono app holding every route under `/v1`, the
 * health/metrics endpoints and the static demo files. Served over uWS by
 * `serveFetch` (uws-bridge.ts); tested in process with `app.request()`.
 *
 * Every route validates its input with zod once, here at the boundary, and
 * fails with `{ "error": { "code", "message" } }` (error-response.ts);
 * invalid input is 400 INVALID_REQUEST with zod's message. The OpenAPI 3
 * document of the routes is served at `/v1/openapi.json`. Reference: docs/http.md.
 */
import { OpenAPIHono } from '@hono/zod-openapi';
import { cors } from 'hono/cors';
import { routePath } from 'hono/route';
import { describeZodError, errorResponse, handleError } from './error-response.ts';
import type { HttpAppDeps, RouteContext } from './route-context.ts';
import { registerGroupRoutes } from './routes/groups.ts';
import { registerHealthRoutes } from './routes/health.ts';
import { registerRecordRoutes } from './routes/records.ts';
import { registerStreamRoutes } from './routes/stream.ts';
import { registerTopicRoutes } from './routes/topics.ts';
import { registerStaticFiles } from './static.ts';

export type { HttpAppDeps } from './route-context.ts';

export type HttpApp = OpenAPIHono;

function corsMiddleware(origins: string[]) {
  const any = origins.includes('*');
  return cors({
    origin: any ? '*' : (origin) => (origins.includes(origin) ? origin : null),
    allowMethods: ['GET', 'POST', 'DELETE', 'OPTIONS'],
    allowHeaders: ['content-type', 'last-event-id'],
    maxAge: 600,
  });
}

/**
 * Builds the app. `fetch` is what `serveFetch` hands requests to.
 * @example
 * const app = createHttpApp({ broker, metrics, limits, isReady: () => true });
 * const res = await app.request('/v1/topics');
 */
export function createHttpApp(deps: HttpAppDeps): HttpApp {
  const app = new OpenAPIHono({
    defaultHook: (result) => {
      if (!result.success) return errorResponse('INVALID_REQUEST', describeZodError(result.error));
    },
  });
  const logError = deps.logError ?? ((error: unknown) => console.error('runnel http: unexpected error', error));

  app.use('*', async (c, next) => {
    await next();
    const route = routePath(c, -1);
    deps.metrics.httpRequests.inc({ route: route === '*' || route === '/*' ? 'other' : route, status: String(c.res.status) });
  });
  app.use('/v1/*', corsMiddleware(deps.corsOrigins ?? ['*']));
  app.onError((error, c) => handleError(error, c, logError));

  const ctx: RouteContext = { ...deps, app };
  registerTopicRoutes(ctx);
  registerRecordRoutes(ctx);
  registerStreamRoutes(ctx);
  registerGroupRoutes(ctx);
  registerHealthRoutes(ctx);
  app.doc('/v1/openapi.json', {
    openapi: '3.0.0',
    info: { title: 'Runnel HTTP API', version: '1', description: 'Kafka-style event log for browsers. Errors: { "error": { "code", "message" } }.' },
  });
  if (deps.staticDir !== undefined) registerStaticFiles(app, deps.staticDir);
  app.notFound((c) => errorResponse('INVALID_REQUEST', `no route for ${c.req.method} ${new URL(c.req.url).pathname}`, 404));
  return app;
}
