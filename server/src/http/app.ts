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
import type { Context, MiddlewareHandler } from 'hono';
import { getCookie } from 'hono/cookie';
import { OriginPolicy } from '../request/origin-policy.ts';
import { describeZodError, errorResponse, handleError } from './error-response.ts';
import { contextOf, PRINCIPAL_KEY, type HttpAppDeps, type RouteContext } from './route-context.ts';
import type { ClusterView } from '../cluster/cluster-state.ts';
import { registerClusterRoutes } from './routes/cluster.ts';
import { registerGroupRoutes } from './routes/groups.ts';
import { registerHealthRoutes } from './routes/health.ts';
import { registerRecordRoutes } from './routes/records.ts';
import { registerStreamRoutes } from './routes/stream.ts';
import { registerTopicRoutes } from './routes/topics.ts';
import { registerStaticFiles } from './static.ts';
import { ALLOWED_REQUEST_HEADERS, EXPOSED_HEADERS, StreamEndpoint } from '../streams/endpoint.ts';
import type { StreamStore } from '../streams/stream-store.ts';

export type { HttpAppDeps } from './route-context.ts';

export type HttpApp = OpenAPIHono;

export interface HttpAppOptions extends HttpAppDeps {
  /** The cluster as this broker sees it (GET /v1/cluster, the cluster gauges of /metrics); without it, a one-node view of the broker's own partitions. */
  clusterView?: () => ClusterView;
  /** Durable Streams state (`/v1/stream/<path>`, docs/durable-streams.md); the endpoint is absent without it. */
  streams?: StreamStore;
}

/** Methods that change state: refused from a disallowed origin whatever the content type (no preflight protects a text/plain POST). */
const STATE_CHANGING = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

function corsMiddleware(policy: OriginPolicy) {
  return cors({
    origin: (origin, c) => (policy.isAllowed(origin, c.req.header('host')) ? (policy.allowsAny ? '*' : origin) : null),
    allowMethods: ['GET', 'HEAD', 'PUT', 'POST', 'DELETE', 'OPTIONS'],
    allowHeaders: [...new Set(['content-type', 'last-event-id', 'authorization', ...ALLOWED_REQUEST_HEADERS])],
    exposeHeaders: EXPOSED_HEADERS,
    maxAge: 600,
  });
}

/** Routes any client may call without a token (liveness, readiness, the API description, the demo's static files). */
const PUBLIC_PATHS = new Set(['/healthz', '/readyz', '/v1/openapi.json']);

/**
 * Where an HTTP client's token comes from: `Authorization: Bearer`, else the `access_token` query
 * parameter (EventSource and sendBeacon cannot set headers), else the `runnel_token` cookie.
 */
export function tokenOf(c: Context): string | undefined {
  const header = c.req.header('authorization');
  if (header !== undefined) {
    const m = /^Bearer\s+(\S+)$/i.exec(header.trim());
    return m ? m[1] : header;
  }
  const query = c.req.query('access_token');
  if (query !== undefined) return query;
  return getCookie(c, 'runnel_token');
}

/** With auth configured, every non-public request carries a valid token; its principal becomes the request's. */
function authentication(api: RouteContext['broker']): MiddlewareHandler {
  return async (c, next) => {
    if (!api.requiresToken) return next();
    const path = new URL(c.req.url).pathname;
    const isApi = path.startsWith('/v1/') || path === '/metrics';
    if (!isApi || PUBLIC_PATHS.has(path) || c.req.method === 'OPTIONS') return next();
    const result = await api.authenticate(tokenOf(c), contextOf(c).remoteAddress);
    if (!result.ok) return errorResponse(result.error.errorName, result.error.message);
    c.set(PRINCIPAL_KEY as never, result.principal as never);
    // Its labels name every topic and group: metrics are for operators (the admin grant; audited).
    if (path === '/metrics') api.checkAdmin(contextOf(c));
    c.set(PRINCIPAL_KEY as never, result.principal as never);
    return next();
  };
}

function originGuard(policy: OriginPolicy, metrics: HttpAppDeps['metrics']): MiddlewareHandler {
  return async (c, next) => {
    const origin = c.req.header('origin');
    if (STATE_CHANGING.has(c.req.method) && !policy.isAllowed(origin, c.req.header('host'))) {
      metrics.authFailures.inc({ reason: 'origin' });
      return errorResponse('ORIGIN_NOT_ALLOWED', `origin ${origin?.slice(0, 200)} may not change state on this broker; add it to --cors-origins`);
    }
    await next();
  };
}

/**
 * Builds the app. `fetch` is what `serveFetch` hands requests to.
 * @example
 * const app = createHttpApp({ broker, metrics, limits, isReady: () => true });
 * const res = await app.request('/v1/topics');
 */
export function createHttpApp(deps: HttpAppOptions): HttpApp {
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
  const origins = new OriginPolicy(deps.corsOrigins ?? []);
  app.use('/v1/*', corsMiddleware(origins));
  app.use('*', originGuard(origins, deps.metrics));
  app.use('*', authentication(deps.broker));
  app.onError((error, c) => handleError(error, c, logError));

  const ctx: RouteContext = { ...deps, app };
  registerTopicRoutes(ctx);
  registerRecordRoutes(ctx);
  registerStreamRoutes(ctx);
  registerGroupRoutes(ctx);
  registerClusterRoutes(ctx, deps.clusterView);
  registerHealthRoutes(ctx);
  if (deps.streams !== undefined) new StreamEndpoint(deps.broker, deps.streams, deps.limits, deps.broker.requiresToken).register(app);
  app.doc('/v1/openapi.json', {
    openapi: '3.0.0',
    info: { title: 'Runnel HTTP API', version: '1', description: 'Kafka-style event log for browsers. Errors: { "error": { "code", "message" } }.' },
  });
  if (deps.staticDir !== undefined) registerStaticFiles(app, deps.staticDir);
  app.notFound((c) => errorResponse('INVALID_REQUEST', `no route for ${c.req.method} ${new URL(c.req.url).pathname}`, 404));
  return app;
}
