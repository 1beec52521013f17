/**
 * Who asks: every WebSocket frame and HTTP request reaches the request
 * layer with a `RequestContext`. The principal is anonymous until
 * authentication is configured (docs/security.md).
 */

export interface Principal {
  /** Token subject; `anonymous` without authentication. */
  readonly subject: string;
  readonly isAnonymous: boolean;
}

export type Transport = 'ws' | 'http';

export interface RequestContext {
  readonly principal: Principal;
  /** Client-chosen id (hello frame, `x-runnel-client-id` header); for logs and quotas, never trusted for authorization. */
  readonly clientId: string;
  /** Peer address as the socket reports it. */
  readonly remoteAddress: string;
  readonly transport: Transport;
}

export const ANONYMOUS: Principal = Object.freeze({ subject: 'anonymous', isAnonymous: true });

export function requestContext(transport: Transport, remoteAddress: string, clientId = '', principal: Principal = ANONYMOUS): RequestContext {
  return { principal, clientId, remoteAddress, transport };
}
