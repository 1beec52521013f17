/**
 * Who asks: every WebSocket frame and HTTP request reaches the request
 * layer with a `RequestContext`. The principal comes from the verified
 * token, or is anonymous when no authentication is configured
 * (docs/security.md).
 */
import { anonymousPrincipal, type Principal } from '../auth/principal.ts';

export type { Principal };

export type Transport = 'ws' | 'http';

export interface RequestContext {
  readonly principal: Principal;
  /** Client-chosen id (hello frame, `x-runnel-client-id` header); for logs and quotas, never trusted for authorization. */
  readonly clientId: string;
  /** Peer address as the socket reports it. */
  readonly remoteAddress: string;
  readonly transport: Transport;
  /**
   * Aborts when the client went away (an HTTP request whose connection closed): work that would change state
   * and is not yet done is dropped, since the client counts it as failed (a group commit: groups/coordinator.ts).
   */
  readonly signal?: AbortSignal;
}

export const ANONYMOUS: Principal = anonymousPrincipal();

export function requestContext(transport: Transport, remoteAddress: string, clientId = '', principal: Principal = ANONYMOUS): RequestContext {
  return { principal, clientId, remoteAddress, transport };
}
