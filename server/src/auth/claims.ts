/**
 * The claims layout of a Runnel token (docs/security.md, "Token claims"):
 *
 *   { "sub": "u1", "exp": 1767225600, "iat": 1767222000,
 *     "iss": "https://auth.example" (optional), "aud": "runnel" (optional),
 *     "runnel": { "publish": ["activity.*"], "subscribe": ["dash.*"],
 *                 "group": ["g-*"], "admin": false } }
 *
 * Every field of `runnel` is optional (empty list, false) but the object
 * itself is required: it says the token was minted for Runnel, so a token
 * of the same issuer for another service authenticates nothing here.
 * Unknown keys inside `runnel` are refused (a typo such as `publsh` would
 * otherwise grant nothing, silently). Other top-level claims are ignored.
 *
 * Validated once with zod at the boundary, after the signature and the
 * time claims were checked; counts and lengths are capped by AuthLimits.
 */
import { z } from 'zod';
import { AuthLimits } from './limits.ts';

/** Topic names are [a-zA-Z0-9._-] (Kafka's); a topic pattern may add `*`. */
const TOPIC_PATTERN_CHARS = /^[a-zA-Z0-9._*-]+$/;
/** Group names are any string (1-255); a group pattern refuses control characters only. */
const NO_CONTROL_CHARS = /^[^\u0000-\u001f\u007f]+$/;

const topicPattern = z.string().min(1).max(AuthLimits.maxTopicPatternChars).regex(TOPIC_PATTERN_CHARS, 'topic patterns use [a-zA-Z0-9._-] and *');
const groupPattern = z.string().min(1).max(AuthLimits.maxGroupPatternChars).regex(NO_CONTROL_CHARS, 'group patterns may not hold control characters');

/** The `runnel` claim: what the bearer may do. */
export const RunnelClaimSchema = z.strictObject({
  /** Topic patterns the bearer may produce to (and describe). */
  publish: z.array(topicPattern).max(AuthLimits.maxPatternsPerGrant).default([]),
  /** Topic patterns the bearer may fetch, subscribe to (and describe). */
  subscribe: z.array(topicPattern).max(AuthLimits.maxPatternsPerGrant).default([]),
  /** Consumer group name patterns the bearer may join, commit in, fetch offsets of and describe. */
  group: z.array(groupPattern).max(AuthLimits.maxPatternsPerGrant).default([]),
  /** Everything, on every topic and group, plus cluster administration. */
  admin: z.boolean().default(false),
});

export type RunnelClaim = z.output<typeof RunnelClaimSchema>;
/** What a token minter passes: every field optional. */
export type RunnelClaimInput = z.input<typeof RunnelClaimSchema>;

export const TokenClaimsSchema = z.object({
  sub: z.string().min(1).max(AuthLimits.maxSubjectChars).regex(NO_CONTROL_CHARS, 'sub may not hold control characters'),
  /** Seconds since the epoch (RFC 7519 NumericDate). jose has already checked it against the clock. */
  exp: z.number().finite(),
  runnel: RunnelClaimSchema,
});

export type TokenClaims = z.output<typeof TokenClaimsSchema>;

export type ClaimsResult = { ok: true; claims: TokenClaims } | { ok: false; message: string };

/**
 * Validates a verified payload. Never throws; the message names the claim
 * and the rule broken, never the claim's value (it came from the token).
 */
export function parseTokenClaims(payload: unknown): ClaimsResult {
  const parsed = TokenClaimsSchema.safeParse(payload);
  if (parsed.success) return { ok: true, claims: parsed.data };
  const issue = parsed.error.issues[0];
  if (issue.path.length === 1 && issue.path[0] === 'runnel' && issue.code === 'invalid_type') {
    return { ok: false, message: 'the token has no "runnel" claim object (it was not minted for Runnel)' };
  }
  const where = issue.path.map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`)).join('').slice(1);
  return { ok: false, message: `claim ${where || '(payload)'}: ${issue.message}` };
}
