/**
 * Auth configuration and the loader that turns it into a TokenVerifier:
 * the I/O edge of auth. Key files are read once, here, at start-up; a bad
 * key fails start-up with a ConfigError naming the file and the fix (the
 * CLI prints it as `runnel: configuration error: ...`). Key material never
 * appears in a message.
 *
 * Documented in docs/security.md ("Configuring auth").
 */
import { readFile, stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import { z } from 'zod';
import { ConfigError } from '../config-error.ts';
import { AuthConfigError, hs256Key, importLocalJwks, importPublicKey, type LocalJwks, type VerificationKey } from './keys.ts';
import { AuthLimits } from './limits.ts';
import { createAnonymousVerifier, createTokenVerifier, type TokenVerifier } from './verifier.ts';

const oneOrMany = z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]);

export const AuthConfigSchema = z.strictObject({
  /** `anonymous`: no tokens, every client may do everything (loopback only, or --insecure). `token`: a valid JWT is required. */
  mode: z.enum(['anonymous', 'token']).default('anonymous'),
  /** HS256 shared secrets, each at least AuthLimits.minHs256SecretBytes; several = rotation (each is tried). */
  hs256Secrets: z.array(z.string()).default([]),
  /** Files holding one public key each: PEM SPKI or a JWK (RSA → RS256, EC P-256 → ES256, Ed25519 → EdDSA). */
  publicKeyFiles: z.array(z.string().min(1)).default([]),
  /** A local JWKS file (`{ "keys": [...] }`) of public keys, selected by the token's `kid`. */
  jwksFile: z.string().min(1).optional(),
  /** Required `iss`; unset = not checked. */
  issuer: oneOrMany.optional(),
  /** Required `aud`; unset = not checked. Set it when the issuer mints tokens for other services too. */
  audience: oneOrMany.optional(),
});

export type AuthConfig = z.output<typeof AuthConfigSchema>;
export type AuthConfigInput = z.input<typeof AuthConfigSchema>;

/** How key files are read; injected so tests need no files. */
export interface KeyFileReader {
  read(path: string, maxBytes: number): Promise<string>;
}

export const nodeKeyFileReader: KeyFileReader = {
  async read(path, maxBytes) {
    const { size } = await stat(path);
    if (size > maxBytes) throw new Error(`the file has ${size} bytes, the limit is ${maxBytes}`);
    return readFile(path, 'utf8');
  },
};

/** Validates a raw auth config (from the config file or flags); throws ConfigError naming the field. */
export function parseAuthConfig(raw: unknown, source = 'auth'): AuthConfig {
  const parsed = AuthConfigSchema.safeParse(raw ?? {});
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new ConfigError(`${source}${issue.path.map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`)).join('')}: ${issue.message}`);
  }
  const config = parsed.data;
  const keySources = config.hs256Secrets.length + config.publicKeyFiles.length + (config.jwksFile === undefined ? 0 : 1);
  if (config.mode === 'token' && keySources === 0) {
    throw new ConfigError(`${source}: mode "token" needs at least one of hs256Secrets, publicKeyFiles or jwksFile`);
  }
  if (config.mode === 'anonymous' && (keySources > 0 || config.issuer !== undefined || config.audience !== undefined)) {
    throw new ConfigError(`${source}: keys or issuer/audience are configured but mode is "anonymous", so they would be ignored; set mode "token"`);
  }
  return config;
}

/**
 * Builds the verifier for a config: loads every key file once.
 *
 * @example
 * const verifier = await loadTokenVerifier({ mode: 'token', publicKeyFiles: ['/etc/runnel/issuer.pem'], issuer: 'https://auth.example' });
 */
export async function loadTokenVerifier(raw: AuthConfigInput | AuthConfig, options: { baseDir?: string; reader?: KeyFileReader } = {}): Promise<TokenVerifier> {
  const config = parseAuthConfig(raw);
  if (config.mode === 'anonymous') return createAnonymousVerifier();
  const reader = options.reader ?? nodeKeyFileReader;
  const baseDir = options.baseDir ?? process.cwd();
  try {
    const keys: VerificationKey[] = config.hs256Secrets.map((secret, i) => hs256Key(secret, `auth.hs256Secrets[${i}]`));
    for (const file of config.publicKeyFiles) keys.push(await importPublicKey(await readKeyFile(reader, resolve(baseDir, file)), file));
    let jwks: LocalJwks | undefined;
    let jwksKeys = 0;
    if (config.jwksFile !== undefined) {
      ({ jwks, keyCount: jwksKeys } = importLocalJwks(await readKeyFile(reader, resolve(baseDir, config.jwksFile)), config.jwksFile));
    }
    checkKeyCounts(keys, jwksKeys);
    return createTokenVerifier({ keys, jwks, issuer: config.issuer, audience: config.audience });
  } catch (error) {
    if (error instanceof AuthConfigError) throw new ConfigError(`auth: ${error.message}`, { cause: error });
    throw error;
  }
}

async function readKeyFile(reader: KeyFileReader, path: string): Promise<string> {
  try {
    return await reader.read(path, AuthLimits.maxKeyFileBytes);
  } catch (cause) {
    throw new AuthConfigError(`cannot read key file ${path}: ${(cause as Error).message}`);
  }
}

/** Bounded key lists: every kid-less key of an algorithm must fit in AuthLimits.maxKeysPerToken tries. */
function checkKeyCounts(keys: readonly VerificationKey[], jwksKeys: number): void {
  if (keys.length + jwksKeys > AuthLimits.maxConfiguredKeys) {
    throw new AuthConfigError(`${keys.length + jwksKeys} verification keys configured, the limit is ${AuthLimits.maxConfiguredKeys}`);
  }
  const unnamedByAlg = new Map<string, number>();
  for (const key of keys) {
    if (key.kid !== undefined) continue;
    const alg = key.algorithms[0];
    unnamedByAlg.set(alg, (unnamedByAlg.get(alg) ?? 0) + 1);
  }
  for (const [alg, count] of unnamedByAlg) {
    if (count > AuthLimits.maxKeysPerToken) {
      throw new AuthConfigError(`${count} ${alg} keys without a kid: a token is tried against at most ${AuthLimits.maxKeysPerToken}; give the keys a kid (JWK or JWKS) or retire old ones`);
    }
  }
}
