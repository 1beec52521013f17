/**
 * Minting HS256 tokens in Runnel's claims layout (claims.ts): what
 * `runnel token create` does, and what a test or a small deployment's
 * token endpoint can call. The claims pass the same schema the verifier
 * applies, so a minted token is never refused for its shape.
 *
 * Production issuers usually sign with their own key (RS256/ES256/EdDSA)
 * and only the public key is configured on the broker; this is the
 * shared-secret path.
 */
import { RunnelError } from '@runnel/client/codec';
import { SignJWT } from 'jose';
import { TokenClaimsSchema, type RunnelClaimInput } from './claims.ts';
import { AuthConfigError, hs256Key } from './keys.ts';

export interface MintOptions {
  /** The `sub` claim. */
  subject: string;
  grants: RunnelClaimInput;
  /** Lifetime; `exp` = floor((nowMs + ttlMs) / 1000). */
  ttlMs: number;
  /** At least AuthLimits.minHs256SecretBytes bytes. */
  secret: string;
  nowMs: number;
  issuer?: string;
  audience?: string;
  /** `kid` header, when the broker holds several secrets with kids. */
  keyId?: string;
}

/**
 * @example
 * const token = await mintHs256Token({ subject: 'u1', grants: { publish: ['activity.*'] }, ttlMs: 3_600_000, secret, nowMs: Date.now() });
 */
export async function mintHs256Token(options: MintOptions): Promise<string> {
  const { subject, grants, ttlMs, secret, nowMs } = options;
  if (!Number.isSafeInteger(ttlMs) || ttlMs < 1000) throw new RunnelError('INVALID_REQUEST', `the token lifetime must be at least 1 s, got ${ttlMs} ms`);
  let key: Uint8Array;
  try {
    key = hs256Key(secret, 'the signing secret').key as Uint8Array;
  } catch (error) {
    if (error instanceof AuthConfigError) throw new RunnelError('INVALID_REQUEST', error.message);
    throw error;
  }
  const issuedAtSec = Math.floor(nowMs / 1000);
  const expiresAtSec = Math.floor((nowMs + ttlMs) / 1000);
  const parsed = TokenClaimsSchema.safeParse({ sub: subject, exp: expiresAtSec, runnel: grants });
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new RunnelError('INVALID_REQUEST', `${issue.path.join('.') || 'claims'}: ${issue.message}`);
  }
  const jwt = new SignJWT({ runnel: parsed.data.runnel })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT', ...(options.keyId === undefined ? {} : { kid: options.keyId }) })
    .setSubject(subject)
    .setIssuedAt(issuedAtSec)
    .setExpirationTime(expiresAtSec);
  if (options.issuer !== undefined) jwt.setIssuer(options.issuer);
  if (options.audience !== undefined) jwt.setAudience(options.audience);
  return jwt.sign(key);
}
