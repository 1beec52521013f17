/**
 * Verification keys, each pinned to the algorithms of its key type:
 *
 *   HS256 secret            → HS256 only
 *   RSA public key (≥2048)  → RS256 only
 *   EC P-256 public key     → ES256 only
 *   Ed25519 public key      → EdDSA / Ed25519 only
 *
 * Invariant: a key verifies only tokens whose `alg` is in its list. This is
 * what defeats algorithm confusion (an attacker signing an HS256 token with
 * an RSA public key's PEM text as the HMAC secret): RSA keys never enter an
 * HMAC, and secrets are only ever configured as secrets (RFC 8725 §3.1).
 *
 * Builds keys from text already read (PEM SPKI, one JWK, a JWKS); reading
 * the files is config.ts's job. Throws AuthConfigError with an operator
 * message; never prints key material.
 */
import { createLocalJWKSet, importJWK, importSPKI, type CryptoKey, type JSONWebKeySet, type JWK } from 'jose';
import { AuthLimits } from './limits.ts';

export type JwsAlgorithm = 'HS256' | 'RS256' | 'ES256' | 'EdDSA' | 'Ed25519';

/** Algorithms a Runnel broker accepts at all; `none` and everything else is refused before any key is looked up. */
export const ACCEPTED_ALGORITHMS: ReadonlySet<string> = new Set<JwsAlgorithm>(['HS256', 'RS256', 'ES256', 'EdDSA', 'Ed25519']);
/** The asymmetric ones: the only algorithms a JWKS is consulted for. */
export const ASYMMETRIC_ALGORITHMS: ReadonlySet<string> = new Set<JwsAlgorithm>(['RS256', 'ES256', 'EdDSA', 'Ed25519']);

export interface VerificationKey {
  /** Where the key came from ("hs256Secrets[0]", "keys/issuer.pem"), for messages. Never key material. */
  readonly source: string;
  /** The `kid` a token must name to select this key first; undefined = tried for any kid. */
  readonly kid: string | undefined;
  /** The only `alg` values this key verifies (pinned by key type; see the file header). */
  readonly algorithms: readonly JwsAlgorithm[];
  readonly key: CryptoKey | Uint8Array;
}

/** A local JWKS: jose's resolver over public signature keys. */
export type LocalJwks = ReturnType<typeof createLocalJWKSet>;

/** A bad key or key file; `message` is meant for the operator as is. */
export class AuthConfigError extends Error {
  override readonly name = 'AuthConfigError';
}

const utf8 = new TextEncoder();

/** An HS256 shared secret (the UTF-8 bytes of `secret`). */
export function hs256Key(secret: string, source: string): VerificationKey {
  const bytes = utf8.encode(secret);
  if (bytes.length < AuthLimits.minHs256SecretBytes) {
    throw new AuthConfigError(`${source}: an HS256 secret needs at least ${AuthLimits.minHs256SecretBytes} bytes (RFC 7518 §3.2), got ${bytes.length}; generate one with \`openssl rand -base64 48\``);
  }
  return Object.freeze({ source, kid: undefined, algorithms: Object.freeze(['HS256'] as const), key: bytes });
}

const PINNED = {
  RSA: ['RS256'],
  EC: ['ES256'],
  OKP: ['EdDSA', 'Ed25519'],
} as const satisfies Record<string, readonly JwsAlgorithm[]>;

/**
 * A public key from a file's text: PEM SPKI (`-----BEGIN PUBLIC KEY-----`)
 * or one JWK as JSON. Its type decides its algorithms.
 */
export async function importPublicKey(text: string, source: string): Promise<VerificationKey> {
  const trimmed = text.trim();
  if (trimmed.startsWith('{')) return importPublicJwk(parseJson(trimmed, source), source);
  if (/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(trimmed)) {
    throw new AuthConfigError(`${source} holds a private key; configure the public key (\`openssl pkey -in key.pem -pubout\`) and keep the private key with the token issuer`);
  }
  if (trimmed.includes('-----BEGIN CERTIFICATE-----')) {
    throw new AuthConfigError(`${source} holds a certificate; extract its public key with \`openssl x509 -in cert.pem -pubkey -noout\``);
  }
  if (!trimmed.startsWith('-----BEGIN PUBLIC KEY-----')) {
    throw new AuthConfigError(`${source} is neither a PEM public key (-----BEGIN PUBLIC KEY-----) nor a JWK (JSON)`);
  }
  // NB: WebCrypto refuses to import a key under another type's algorithm, so the first import that
  // succeeds names the key's type; the key is then pinned to that type's algorithms only.
  for (const algorithms of [PINNED.RSA, PINNED.EC, PINNED.OKP]) {
    let key: CryptoKey;
    try {
      key = await importSPKI(trimmed, algorithms[0], { extractable: false });
    } catch {
      continue;
    }
    checkRsaModulus(key, source);
    return Object.freeze({ source, kid: undefined, algorithms, key });
  }
  throw new AuthConfigError(`${source}: unsupported public key; use RSA (2048 bits or more, RS256), EC P-256 (ES256) or Ed25519 (EdDSA)`);
}

async function importPublicJwk(value: unknown, source: string): Promise<VerificationKey> {
  const jwk = checkPublicJwk(value, source);
  const algorithms = algorithmsOfJwk(jwk, source);
  let key: CryptoKey | Uint8Array;
  try {
    key = await importJWK(jwk, algorithms[0], { extractable: false });
  } catch (cause) {
    throw new AuthConfigError(`${source}: invalid JWK (${(cause as Error).message})`);
  }
  if (key instanceof Uint8Array) throw new AuthConfigError(`${source}: expected a public key JWK`);
  checkRsaModulus(key, source);
  return Object.freeze({ source, kid: typeof jwk.kid === 'string' ? jwk.kid : undefined, algorithms, key });
}

/**
 * A local JWKS from a file's text (`{ "keys": [...] }`): public signature
 * keys only (RSA, EC P-256, Ed25519); a shared secret (`kty: oct`) or a
 * private member is refused, so a JWKS can never verify an HS256 token.
 */
export function importLocalJwks(text: string, source: string): { jwks: LocalJwks; keyCount: number } {
  const value = parseJson(text, source);
  if (typeof value !== 'object' || value === null || !Array.isArray((value as JSONWebKeySet).keys)) {
    throw new AuthConfigError(`${source}: a JWKS is a JSON object { "keys": [ ... ] }`);
  }
  const { keys } = value as JSONWebKeySet;
  if (keys.length === 0) throw new AuthConfigError(`${source}: the JWKS has no keys`);
  if (keys.length > AuthLimits.maxConfiguredKeys) throw new AuthConfigError(`${source}: the JWKS has ${keys.length} keys, the limit is ${AuthLimits.maxConfiguredKeys}`);
  keys.forEach((jwk, i) => {
    const where = `${source} keys[${i}]`;
    algorithmsOfJwk(checkPublicJwk(jwk, where), where);
    if (jwk.kty === 'RSA' && typeof jwk.n === 'string' && base64UrlBits(jwk.n) < AuthLimits.minRsaModulusBits) {
      throw new AuthConfigError(`${where}: RSA keys need at least ${AuthLimits.minRsaModulusBits} bits`);
    }
  });
  try {
    return { jwks: createLocalJWKSet({ keys }), keyCount: keys.length };
  } catch (cause) {
    throw new AuthConfigError(`${source}: invalid JWKS (${(cause as Error).message})`);
  }
}

function checkPublicJwk(value: unknown, source: string): JWK {
  if (typeof value !== 'object' || value === null || Array.isArray(value) || typeof (value as JWK).kty !== 'string') {
    throw new AuthConfigError(`${source}: a JWK is a JSON object with a "kty"`);
  }
  const jwk = value as JWK;
  if (jwk.kty === 'oct') throw new AuthConfigError(`${source}: a shared secret (kty "oct") does not belong in a public key file; configure it in hs256Secrets`);
  if ('d' in jwk) throw new AuthConfigError(`${source} holds a private JWK ("d"); configure the public key only`);
  return jwk;
}

function algorithmsOfJwk(jwk: JWK, source: string): readonly JwsAlgorithm[] {
  let algorithms: readonly JwsAlgorithm[];
  if (jwk.kty === 'RSA') algorithms = PINNED.RSA;
  else if (jwk.kty === 'EC' && jwk.crv === 'P-256') algorithms = PINNED.EC;
  else if (jwk.kty === 'OKP' && jwk.crv === 'Ed25519') algorithms = PINNED.OKP;
  else throw new AuthConfigError(`${source}: unsupported key (kty ${JSON.stringify(jwk.kty)}${jwk.crv ? `, crv ${JSON.stringify(jwk.crv)}` : ''}); use RSA, EC P-256 or OKP Ed25519`);
  if (jwk.alg !== undefined && !algorithms.includes(jwk.alg as JwsAlgorithm)) {
    throw new AuthConfigError(`${source}: "alg" ${JSON.stringify(jwk.alg)} does not fit a ${jwk.kty} key; Runnel verifies ${algorithms.join(' / ')} with it`);
  }
  if (jwk.use !== undefined && jwk.use !== 'sig') throw new AuthConfigError(`${source}: "use" must be "sig" for a verification key`);
  return algorithms;
}

function checkRsaModulus(key: CryptoKey, source: string): void {
  const { modulusLength } = key.algorithm as { modulusLength?: number };
  if (modulusLength !== undefined && modulusLength < AuthLimits.minRsaModulusBits) {
    throw new AuthConfigError(`${source}: RSA keys need at least ${AuthLimits.minRsaModulusBits} bits, this one has ${modulusLength}`);
  }
}

function parseJson(text: string, source: string): unknown {
  try {
    return JSON.parse(text);
  } catch (cause) {
    throw new AuthConfigError(`${source} is not valid JSON: ${(cause as Error).message}`);
  }
}

/** Bits in a base64url value: the RSA modulus size (RFC 7518 §6.3.1.1: `n` has no leading zero octets). */
function base64UrlBits(value: string): number {
  return Math.floor((value.length * 6) / 8) * 8;
}
