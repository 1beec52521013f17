/**
 * The named limits of authentication: how big a token, a subject and a
 * grant list may be, how many keys a token may be tried against, and how
 * much clock skew is forgiven. Fixed numbers rather than configuration:
 * they bound work an unauthenticated client can cause, so an operator has
 * no reason to raise them. Invariant: the verifier and the claims schema
 * refuse anything past these numbers before doing work proportional to it.
 */
export const AuthLimits = {
  /**
   * Longest token accepted, in characters, checked before any decoding. A token carries at most
   * 3 × maxPatternsPerGrant patterns of maxPatternChars; 16 KiB holds that with room for standard
   * claims. Too small refuses real tokens; too large lets a client make the broker base64-decode and
   * JSON-parse big strings before it is authenticated.
   */
  maxTokenChars: 16 * 1024,
  /** Longest `sub` claim (characters). It names buckets, audit lines and metrics labels. */
  maxSubjectChars: 255,
  /** Patterns per grant list (`publish`, `subscribe`, `group`). Each match costs one pass per pattern. */
  maxPatternsPerGrant: 64,
  /** Longest topic pattern: Kafka's topic name limit (249). */
  maxTopicPatternChars: 249,
  /** Longest group pattern: the broker's default maxGroupNameLength (255). */
  maxGroupPatternChars: 255,
  /**
   * Configured keys a token may be verified against (static keys without a matching `kid`, plus
   * JWKS candidates). Each try is one signature check, so this bounds the CPU a forged token costs.
   */
  maxKeysPerToken: 8,
  /** Verification keys in one configuration (secrets + public key files + JWKS members). */
  maxConfiguredKeys: 64,
  /** Largest key or JWKS file read at start-up (bytes). */
  maxKeyFileBytes: 1024 * 1024,
  /**
   * Shortest HS256 secret (bytes of its UTF-8 encoding). RFC 7518 §3.2: a key of the same size as the
   * hash output (256 bits) or larger MUST be used. Shorter secrets can be brute-forced offline from
   * any one token.
   */
  minHs256SecretBytes: 32,
  /**
   * Clock skew forgiven on `exp` and `nbf` (seconds), as Kafka's `sasl.oauthbearer.clock.skew.seconds`
   * (default 30). Covers NTP-level skew between the token issuer and the broker; every token lives
   * this much longer than its `exp`.
   */
  clockToleranceSec: 30,
  /** Smallest RSA modulus accepted for RS256 (bits); jose refuses shorter keys at verification too. */
  minRsaModulusBits: 2048,
  /**
   * Audit lines written per second (audit.ts); the rest are counted and summarised in one
   * `audit_suppressed` line per second. Too low hides who is failing during an incident (the counter
   * hook still counts all); too high lets a client that sends bad tokens in a loop fill the disk.
   */
  maxAuditLinesPerSec: 50,
  /** Longest string field of an audit line (subject, ip, resource name); the rest is cut with `…`. */
  maxAuditFieldChars: 256,
} as const;
