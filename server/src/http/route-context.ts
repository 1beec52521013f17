/**
 * What the HTTP app and each route module share: the request layer
 * (`HttpBrokerApi`), metrics, limits, and how a Hono request becomes a
 * `RequestContext`. Its own module so routes never import the app that
 * registers them.
 */
import type { Context } from 'hono';
import type { OpenAPIHono } from '@hono/zod-openapi';
import type { Limits } from '../limits.ts';
import type { RunnelMetrics } from '../metrics.ts';
import type { HttpBrokerApi } from '../request/broker-api.ts';
import { ANONYMOUS, requestContext, type Principal, type RequestContext } from '../request/request-context.ts';
import type { ConnectionInfo } from './uws-bridge.ts';

export interface HttpAppDeps {
  broker: HttpBrokerApi;
  metrics: RunnelMetrics;
  limits: Limits;
  /** Directory served at `/` (the demo build); none when undefined. */
  staticDir?: string;
  /** `/readyz` answers 503 until this returns true. */
  isReady: () => boolean;
  /** Browser origins allowed besides same-origin (request/origin-policy.ts); default loopback origins only, `['*']` any. */
  corsOrigins?: string[];
  /** Security warnings of this configuration, reported by `/readyz` (e.g. --insecure). */
  warnings?: readonly string[];
  /** Where unexpected errors go; default console.error. */
  logError?: (error: unknown) => void;
}

/** What each route module receives. */
export interface RouteContext extends HttpAppDeps {
  app: OpenAPIHono;
}

/** Longest client id taken from the `x-runnel-client-id` header (it goes into logs and quota keys). */
const MAX_CLIENT_ID_LENGTH = 128;

/** Where the authentication middleware (app.ts) leaves the verified principal of a request. */
export const PRINCIPAL_KEY = 'runnelPrincipal';

/** The request layer's view of one HTTP request (the bridge passes the peer address as Hono's env). */
export function contextOf(c: Context): RequestContext {
  const env = c.env as Partial<ConnectionInfo> | undefined;
  const principal = c.get(PRINCIPAL_KEY as never) as Principal | undefined;
  return { ...requestContext('http', env?.remoteAddress ?? '', (c.req.header('x-runnel-client-id') ?? '').slice(0, MAX_CLIENT_ID_LENGTH), principal ?? ANONYMOUS), signal: c.req.raw.signal };
}
