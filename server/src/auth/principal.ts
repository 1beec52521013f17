/**
 * A principal: who is asking (the token's `sub`, or "anonymous") and what
 * it may do, with its grant patterns compiled once so that authorizing a
 * request is a few Set lookups and string compares.
 *
 * Invariant: a Principal is immutable; a refreshed token yields a new one.
 */
import type { TokenClaims } from './claims.ts';
import { NamePatternSet } from './name-pattern.ts';

export interface Grants {
  /** Topics the principal may produce to (and describe). */
  readonly publish: NamePatternSet;
  /** Topics the principal may fetch and subscribe to (and describe). */
  readonly subscribe: NamePatternSet;
  /** Consumer groups the principal may use. */
  readonly group: NamePatternSet;
  /** Everything, including topic creation/deletion and cluster operations. */
  readonly admin: boolean;
}

export interface Principal {
  /** The token's `sub`, or ANONYMOUS_SUBJECT. Keys per-subject quotas and audit lines. */
  readonly subject: string;
  readonly grants: Grants;
  /**
   * When the token stops being valid (`exp` × 1000; Infinity for anonymous). NB: verification forgives
   * AuthLimits.clockToleranceSec on top; the request layer should ask for a refresh before this time.
   */
  readonly expiresAtMs: number;
  /** True only for the principal of an unauthenticated broker (no auth configured, loopback). */
  readonly isAnonymous: boolean;
}

export const ANONYMOUS_SUBJECT = 'anonymous';

const ANONYMOUS: Principal = Object.freeze({
  subject: ANONYMOUS_SUBJECT,
  grants: Object.freeze({
    publish: NamePatternSet.compile(['*']),
    subscribe: NamePatternSet.compile(['*']),
    group: NamePatternSet.compile(['*']),
    admin: true,
  }),
  expiresAtMs: Number.POSITIVE_INFINITY,
  isAnonymous: true,
});

/**
 * The principal of every client of a broker without auth (auth mode
 * `anonymous`, which the listen policy allows on loopback only, or with
 * `--insecure`). It may do everything.
 */
export function anonymousPrincipal(): Principal {
  return ANONYMOUS;
}

/** The principal of a verified, validated token. */
export function principalFromClaims(claims: TokenClaims): Principal {
  const { publish, subscribe, group, admin } = claims.runnel;
  return Object.freeze({
    subject: claims.sub,
    grants: Object.freeze({
      publish: NamePatternSet.compile(publish),
      subscribe: NamePatternSet.compile(subscribe),
      group: NamePatternSet.compile(group),
      admin,
    }),
    expiresAtMs: claims.exp * 1000,
    isAnonymous: false,
  });
}

/** Whether the principal's token has expired at `nowMs` (no clock tolerance: refresh on time). */
export function isPrincipalExpired(principal: Principal, nowMs: number): boolean {
  return nowMs >= principal.expiresAtMs;
}
