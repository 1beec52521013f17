/**
 * Token verification: a compact JWS (JWT) in, a Principal or a coded
 * refusal out. Steps, each refusing before the next costs anything:
 *
 *   1. present and at most AuthLimits.maxTokenChars;
 *   2. protected header decodes and its `alg` is one Runnel accepts
 *      (`none` and everything unlisted refused here, RFC 8725 §3.1);
 *   3. candidate keys: configured keys pinned to that `alg` (keys.ts), a
 *      matching `kid` first; the JWKS for asymmetric algorithms; at most
 *      AuthLimits.maxKeysPerToken signature checks;
 *   4. jose checks the signature, then `exp`/`nbf` (AuthLimits.clockToleranceSec),
 *      `iss`/`aud` when configured, presence of `exp` and `sub`;
 *   5. the claims schema (claims.ts) validates the `runnel` grants.
 *
 * Invariant: verify() never throws on bad input and no reason text holds
 * the token or a claim value taken from it. Time comes in as `nowMs`.
 */
import type { ErrorName } from '@runnel/client/codec';
import { decodeProtectedHeader, errors, jwtVerify, type CryptoKey, type JWTPayload, type ProtectedHeaderParameters } from 'jose';
import { parseTokenClaims } from './claims.ts';
import { ACCEPTED_ALGORITHMS, ASYMMETRIC_ALGORITHMS, type JwsAlgorithm, type LocalJwks, type VerificationKey } from './keys.ts';
import { AuthLimits } from './limits.ts';
import { anonymousPrincipal, principalFromClaims, type Principal } from './principal.ts';

/** Why a token was refused; stable words for audit lines and metrics labels. */
export type AuthenticationFailure =
  | 'missing' | 'malformed' | 'algorithm' | 'unknown_key' | 'signature'
  | 'expired' | 'not_yet_valid' | 'claim_invalid' | 'grants_invalid';

/**
 * Every refusal is SASL_AUTHENTICATION_FAILED (Kafka 58), `failure` says why. NB: TOKEN_EXPIRED is for
 * an open connection whose principal expires later (the session's job), not for a token refused here.
 */
export type AuthenticationErrorName = Extract<ErrorName, 'SASL_AUTHENTICATION_FAILED'>;

export type VerifyResult =
  | { ok: true; principal: Principal }
  | { ok: false; code: AuthenticationErrorName; failure: AuthenticationFailure; reason: string };

/** The seam the request layer authenticates through. */
export interface TokenVerifier {
  readonly mode: 'anonymous' | 'token';
  /** Never throws; `nowMs` is the time `exp` and `nbf` are checked against. */
  verify(token: string | undefined, nowMs: number): Promise<VerifyResult>;
}

export interface TokenVerifierOptions {
  /** HS256 secrets and public keys, each pinned to its algorithms. */
  keys: readonly VerificationKey[];
  /** A local JWKS, consulted for RS256/ES256/EdDSA tokens. */
  jwks?: LocalJwks;
  /** Required `iss` value(s); undefined = not checked. */
  issuer?: string | readonly string[];
  /** Required `aud` value(s); undefined = not checked. */
  audience?: string | readonly string[];
}

/** Every client is the anonymous principal; tokens are not looked at (auth mode `anonymous`). */
export function createAnonymousVerifier(): TokenVerifier {
  const result: VerifyResult = Object.freeze({ ok: true, principal: anonymousPrincipal() });
  return { mode: 'anonymous', verify: async () => result };
}

/**
 * @example
 * const verifier = createTokenVerifier({ keys: [hs256Key(process.env.RUNNEL_AUTH_SECRET!, 'env')] });
 * const result = await verifier.verify(hello.token, Date.now());
 * if (!result.ok) close(4401, result.reason);
 */
export function createTokenVerifier(options: TokenVerifierOptions): TokenVerifier {
  const keys = [...options.keys];
  const claimOptions = {
    clockTolerance: AuthLimits.clockToleranceSec,
    requiredClaims: ['exp', 'sub'],
    ...(options.issuer === undefined ? {} : { issuer: typeof options.issuer === 'string' ? options.issuer : [...options.issuer] }),
    ...(options.audience === undefined ? {} : { audience: typeof options.audience === 'string' ? options.audience : [...options.audience] }),
  };

  async function verify(token: string | undefined, nowMs: number): Promise<VerifyResult> {
    if (token === undefined || token === '') return refuse('missing', 'no token; this broker requires one');
    if (typeof token !== 'string') return refuse('malformed', 'the token is not a string');
    if (token.length > AuthLimits.maxTokenChars) return refuse('malformed', `the token is longer than ${AuthLimits.maxTokenChars} characters`);
    let header: ProtectedHeaderParameters;
    try {
      header = decodeProtectedHeader(token);
    } catch {
      return refuse('malformed', 'the token is not a compact JWS (header.payload.signature)');
    }
    const { alg, kid } = header;
    if (typeof alg !== 'string' || !ACCEPTED_ALGORITHMS.has(alg)) {
      return refuse('algorithm', `the token's alg ${describeAlg(alg)} is not accepted; accepted: ${[...ACCEPTED_ALGORITHMS].join(', ')}`);
    }
    const candidates = await candidateKeys(keys, options.jwks, header, alg as JwsAlgorithm);
    if (candidates.length === 0) {
      return refuse('unknown_key', `no configured key verifies ${alg}${typeof kid === 'string' ? ' tokens with this kid' : ' tokens'}`);
    }
    const currentDate = new Date(nowMs);
    for (const candidate of candidates.slice(0, AuthLimits.maxKeysPerToken)) {
      let payload: JWTPayload;
      try {
        ({ payload } = await jwtVerify(token, candidate.key, { ...claimOptions, algorithms: [...candidate.algorithms], currentDate }));
      } catch (error) {
        if (error instanceof errors.JWSSignatureVerificationFailed) continue; // NB: the next key may have signed it (rotation).
        return refuseFromJose(error);
      }
      const parsed = parseTokenClaims(payload);
      if (!parsed.ok) return refuse('grants_invalid', parsed.message);
      return { ok: true, principal: principalFromClaims(parsed.claims) };
    }
    return refuse('signature', 'signature verification failed');
  }

  return { mode: 'token', verify };
}

interface Candidate { readonly key: CryptoKey | Uint8Array; readonly algorithms: readonly JwsAlgorithm[] }

/** Keys pinned to `alg`: those naming the token's kid first, then those without a kid, then JWKS matches. */
async function candidateKeys(keys: readonly VerificationKey[], jwks: LocalJwks | undefined, header: ProtectedHeaderParameters, alg: JwsAlgorithm): Promise<Candidate[]> {
  const kid = typeof header.kid === 'string' ? header.kid : undefined;
  const pinned = keys.filter((k) => k.algorithms.includes(alg));
  const named = kid === undefined ? [] : pinned.filter((k) => k.kid === kid);
  const unnamed = pinned.filter((k) => kid === undefined || k.kid === undefined);
  const candidates: Candidate[] = [...named, ...unnamed];
  if (jwks !== undefined && ASYMMETRIC_ALGORITHMS.has(alg)) candidates.push(...(await jwksCandidates(jwks, header, alg)));
  return candidates;
}

async function jwksCandidates(jwks: LocalJwks, header: ProtectedHeaderParameters, alg: JwsAlgorithm): Promise<Candidate[]> {
  const algorithms = [alg] as const;
  try {
    return [{ key: await jwks(header), algorithms }];
  } catch (error) {
    if (!(error instanceof errors.JWKSMultipleMatchingKeys)) return []; // no matching key (or none usable): not a candidate
    const found: Candidate[] = [];
    for await (const key of error) {
      found.push({ key, algorithms });
      if (found.length >= AuthLimits.maxKeysPerToken) break;
    }
    return found;
  }
}

function refuse(failure: AuthenticationFailure, reason: string): VerifyResult {
  return { ok: false, code: 'SASL_AUTHENTICATION_FAILED', failure, reason };
}

/** Maps jose's errors to failures with our own words (jose messages are not passed on). */
function refuseFromJose(error: unknown): VerifyResult {
  if (error instanceof errors.JWTExpired) return refuse('expired', 'the token has expired');
  if (error instanceof errors.JWTClaimValidationFailed) {
    const { claim, reason } = error;
    if (claim === 'nbf') return refuse('not_yet_valid', 'the token is not valid yet (nbf)');
    if (reason === 'missing') return refuse('claim_invalid', `the token has no "${claim}" claim`);
    if (claim === 'iss' || claim === 'aud') return refuse('claim_invalid', `the token's "${claim}" claim is not the one this broker expects`);
    return refuse('claim_invalid', `the token's "${claim}" claim is invalid`);
  }
  if (error instanceof errors.JOSEAlgNotAllowed) return refuse('algorithm', 'the token\'s alg does not fit the key that matched it');
  if (error instanceof errors.JWSInvalid || error instanceof errors.JWTInvalid) return refuse('malformed', 'the token is malformed');
  return refuse('malformed', 'the token could not be verified');
}

/** The alg as shown in a reason: only short, plain values (it comes from the token). */
function describeAlg(alg: unknown): string {
  return typeof alg === 'string' && /^[A-Za-z0-9-]{1,16}$/.test(alg) ? JSON.stringify(alg) : '(missing or invalid)';
}
