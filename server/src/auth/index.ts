/**
 * Authentication and authorization for the broker's request layer: token
 * verification (jose), principals with compiled grants, authorize(), the
 * listen policy, audit lines. Wired into the broker by
 * server/src/request/access-control.ts and server.ts (docs/security.md).
 */
export { AuthLimits } from './limits.ts';
export { NamePatternSet, matchesPattern } from './name-pattern.ts';
export { RunnelClaimSchema, TokenClaimsSchema, parseTokenClaims } from './claims.ts';
export type { RunnelClaim, RunnelClaimInput, TokenClaims, ClaimsResult } from './claims.ts';
export { ANONYMOUS_SUBJECT, anonymousPrincipal, principalFromClaims, isPrincipalExpired } from './principal.ts';
export type { Grants, Principal } from './principal.ts';
export { Operations, authorize } from './authorize.ts';
export type { Operation, Resource, ResourceOf, TopicResource, GroupResource, ClusterResource, AuthorizeResult, AuthorizationErrorName } from './authorize.ts';
export { ACCEPTED_ALGORITHMS, ASYMMETRIC_ALGORITHMS, AuthConfigError, hs256Key, importPublicKey, importLocalJwks } from './keys.ts';
export type { JwsAlgorithm, VerificationKey, LocalJwks } from './keys.ts';
export { createTokenVerifier, createAnonymousVerifier } from './verifier.ts';
export type { TokenVerifier, TokenVerifierOptions, VerifyResult, AuthenticationFailure, AuthenticationErrorName } from './verifier.ts';
export { AuthConfigSchema, parseAuthConfig, loadTokenVerifier, nodeKeyFileReader } from './config.ts';
export type { AuthConfig, AuthConfigInput, KeyFileReader } from './config.ts';
export { isLoopbackHost, listenPolicyProblem } from './listen-policy.ts';
export type { ListenPolicyInput } from './listen-policy.ts';
export { AuditLog, formatAuditLine, describeResource, authenticationFailureEntry, authorizationFailureEntry } from './audit.ts';
export type { AuditEntry, AuditEvent, AuditLogOptions, AuditStats } from './audit.ts';
export { mintHs256Token } from './mint.ts';
export type { MintOptions } from './mint.ts';
