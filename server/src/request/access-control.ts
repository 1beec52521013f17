/**
 * Access control for the request layer: authentication of a presented
 * token (WebSocket hello and refresh, every HTTP request) and the one
 * authorization check of every operation, with an audit line and a metric
 * for each refusal (never the token itself). Built from the auth modules
 * (server/src/auth): `TokenVerifier`, `authorize`, `AuditLog`.
 *
 * Without auth configured every client is the anonymous principal and
 * every check passes (the listen policy keeps such a broker on loopback).
 */
import { RunnelError } from '@runnel/client/codec';
import { authenticationFailureEntry, authorizationFailureEntry, AuditLog } from '../auth/audit.ts';
import { authorize, type Operation, type ResourceOf } from '../auth/authorize.ts';
import type { Principal } from '../auth/principal.ts';
import { createAnonymousVerifier, type TokenVerifier } from '../auth/verifier.ts';
import type { RunnelMetrics } from '../metrics.ts';
import type { RequestContext } from './request-context.ts';

export type Authentication = { ok: true; principal: Principal } | { ok: false; error: RunnelError };

export interface AccessControlOptions {
  verifier?: TokenVerifier;
  metrics?: RunnelMetrics;
  /** Where audit lines go (default: stderr). */
  writeAudit?: (line: string) => void;
  nowMs?: () => number;
}

export class AccessControl {
  private readonly verifier: TokenVerifier;
  private readonly audit: AuditLog;
  private readonly nowMs: () => number;

  constructor(private readonly options: AccessControlOptions = {}) {
    this.verifier = options.verifier ?? createAnonymousVerifier();
    this.nowMs = options.nowMs ?? Date.now;
    const write = options.writeAudit ?? ((line: string) => process.stderr.write(`${line}\n`));
    this.audit = new AuditLog({ write });
  }

  /** True when clients must present a valid token. */
  get requiresToken(): boolean {
    return this.verifier.mode === 'token';
  }

  async authenticate(token: string | undefined, remoteAddress: string): Promise<Authentication> {
    const result = await this.verifier.verify(token === '' ? undefined : token, this.nowMs());
    if (result.ok) return result;
    this.audit.record(authenticationFailureEntry(result, remoteAddress), this.nowMs());
    this.options.metrics?.authFailures.inc({ reason: result.failure === 'expired' ? 'expired' : 'authentication' });
    return { ok: false, error: new RunnelError(result.code, `authentication failed (${result.failure}): ${result.reason}`) };
  }

  /** Throws TOPIC_/GROUP_/CLUSTER_AUTHORIZATION_FAILED, audited. */
  check<O extends Operation>(ctx: RequestContext, operation: O, resource: ResourceOf[O]): void {
    const decision = authorize(ctx.principal, operation, resource);
    if (decision.ok) return;
    this.audit.record(authorizationFailureEntry(ctx.principal, operation, resource, decision.code, ctx.remoteAddress), this.nowMs());
    this.options.metrics?.authFailures.inc({ reason: 'authorization' });
    throw new RunnelError(decision.code, decision.message);
  }

  /** The same check as a predicate, without an audit line (filtering lists). */
  allows<O extends Operation>(ctx: RequestContext, operation: O, resource: ResourceOf[O]): boolean {
    return authorize(ctx.principal, operation, resource).ok;
  }
}
