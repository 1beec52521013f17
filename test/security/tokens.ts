/**
 * The tokens of the security tests: an RS256 issuer (its public key is what
 * the broker is configured with, `--auth-public-key`), an HS256 secret
 * (`--auth-secret`), and the attacks the matrix throws at the broker. Every
 * token this module makes is remembered in `everyToken()` so tests can
 * check that no log line ever contains one (or its signature).
 */
import { generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { base64url, SignJWT } from 'jose';
import type { RunnelClaimInput } from '../../server/src/auth/claims.ts';
import { mintHs256Token } from '../../server/src/auth/mint.ts';

/** The token kinds of the matrix's columns. */
export type TokenKind = 'none' | 'expired' | 'otherGrants' | 'forged' | 'algNone' | 'hsWithRsaPublicKey' | 'valid';
export const TOKEN_KINDS: readonly TokenKind[] = ['none', 'expired', 'otherGrants', 'forged', 'algNone', 'hsWithRsaPublicKey', 'valid'];

/** The `failure` an audit line must name for each authentication refusal. */
export const FAILURE_OF: Partial<Record<TokenKind, string>> = {
  none: 'missing', expired: 'expired', forged: 'signature', algNone: 'algorithm', hsWithRsaPublicKey: 'signature',
};

export class TestIssuer {
  readonly publicKeyPem: string;
  readonly hsSecret = randomBytes(48).toString('base64');
  readonly dir = mkdtempSync(join(tmpdir(), 'runnel-issuer-'));
  readonly publicKeyFile = join(this.dir, 'issuer-rs256.pem');
  private readonly privateKey: KeyObject;
  private readonly minted = new Set<string>();

  constructor() {
    const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    this.privateKey = privateKey;
    this.publicKeyPem = publicKey.export({ type: 'spki', format: 'pem' }) as string;
    writeFileSync(this.publicKeyFile, this.publicKeyPem);
  }

  /** The broker flags that trust this issuer: its RS256 public key AND its HS256 secret (so alg confusion meets an HMAC key). */
  brokerArgs(): string[] {
    return ['--auth-public-key', this.publicKeyFile, '--auth-secret', this.hsSecret];
  }

  /** RS256, signed by the issuer. `expSec` absolute (seconds); default one hour from now. */
  async rs256(sub: string, grants: RunnelClaimInput, expSec = nowSec() + 3600): Promise<string> {
    return this.remember(await new SignJWT({ runnel: grants }).setProtectedHeader({ alg: 'RS256', typ: 'JWT' })
      .setSubject(sub).setIssuedAt(Math.min(nowSec(), expSec - 60)).setExpirationTime(expSec).sign(this.privateKey));
  }

  /** HS256 with the broker's secret (what `runnel token create` mints). */
  async hs256(sub: string, grants: RunnelClaimInput, ttlMs = 3_600_000): Promise<string> {
    return this.remember(await mintHs256Token({ subject: sub, grants, ttlMs, secret: this.hsSecret, nowMs: Date.now() }));
  }

  /**
   * The token of each matrix column for an operation needing `grants` (`valid` gets exactly those;
   * `otherGrants` a valid token whose grants name other topics and groups only).
   */
  async forKind(kind: TokenKind, grants: RunnelClaimInput): Promise<string | undefined> {
    switch (kind) {
      case 'none': return undefined;
      case 'valid': return this.rs256('matrix-user', grants);
      case 'otherGrants': return this.rs256('matrix-other', OTHER_GRANTS);
      case 'expired': return this.rs256('matrix-user', grants, nowSec() - 600); // far beyond the 30 s tolerance
      case 'forged': {
        // A real token of a low-privilege subject, its payload swapped for an admin one; the signature is the original's.
        const [header, , signature] = (await this.rs256('matrix-other', OTHER_GRANTS)).split('.');
        return this.remember(`${header}.${json({ sub: 'matrix-other', exp: nowSec() + 3600, runnel: { admin: true } })}.${signature}`);
      }
      case 'algNone':
        return this.remember(`${json({ alg: 'none', typ: 'JWT' })}.${json({ sub: 'matrix-user', exp: nowSec() + 3600, runnel: { admin: true } })}.`);
      case 'hsWithRsaPublicKey':
        // Algorithm confusion (RFC 8725 §2.1): HS256 with the issuer's public key PEM text as the HMAC secret.
        return this.remember(await new SignJWT({ runnel: { admin: true } }).setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
          .setSubject('matrix-user').setIssuedAt().setExpirationTime(nowSec() + 3600).sign(new TextEncoder().encode(this.publicKeyPem)));
    }
  }

  /** Every token made so far (for "never in a log line"). */
  everyToken(): string[] {
    return [...this.minted];
  }

  remove(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }

  private remember(token: string): string {
    this.minted.add(token);
    return token;
  }
}

/** What `otherGrants` tokens may do: other topics and groups only (publish non-empty, so initProducer passes: KIP-679). */
export const OTHER_GRANTS: RunnelClaimInput = { publish: ['other.*'], subscribe: ['other.*'], group: ['other-*'] };

export const nowSec = (): number => Math.floor(Date.now() / 1000);

const json = (value: unknown): string => base64url.encode(JSON.stringify(value));
