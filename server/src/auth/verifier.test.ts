import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { base64url, exportJWK, exportSPKI, generateKeyPair, SignJWT, type CryptoKey, type JWTPayload } from 'jose';
import { hs256Key, importLocalJwks, importPublicKey } from './keys.ts';
import { AuthLimits } from './limits.ts';
import { createAnonymousVerifier, createTokenVerifier, type TokenVerifier, type VerifyResult } from './verifier.ts';

const NOW_MS = 1_700_000_000_000;
const NOW_SEC = NOW_MS / 1000;
const SECRET = 'a-shared-secret-of-at-least-32-bytes!!';
const OTHER_SECRET = 'another-shared-secret-of-32-bytes-or-more';
const GRANTS = { publish: ['activity.*'], subscribe: ['dash.*'], group: ['g-*'], admin: false };

interface Pair { privateKey: CryptoKey; publicKey: CryptoKey; pem: string }
let rsa: Pair;
let rsaOther: Pair;
let ec: Pair;
let ed: Pair;
let jwksRsa: Pair;
let jwksEc: Pair;
/** HS256 + RSA (PEM) + EC (JWK) + Ed25519 (PEM) + a JWKS of one RSA and one EC key. */
let verifier: TokenVerifier;

async function pair(alg: 'RS256' | 'ES256' | 'EdDSA'): Promise<Pair> {
  const { privateKey, publicKey } = await generateKeyPair(alg);
  return { privateKey, publicKey, pem: await exportSPKI(publicKey) };
}

before(async () => {
  [rsa, rsaOther, ec, ed, jwksRsa, jwksEc] = await Promise.all([pair('RS256'), pair('RS256'), pair('ES256'), pair('EdDSA'), pair('RS256'), pair('ES256')]);
  const jwks = {
    keys: [
      { ...(await exportJWK(jwksRsa.publicKey)), kid: 'jwks-rs', alg: 'RS256', use: 'sig' },
      { ...(await exportJWK(jwksEc.publicKey)), kid: 'jwks-es' },
    ],
  };
  verifier = createTokenVerifier({
    keys: [
      hs256Key(SECRET, 'secret'),
      await importPublicKey(rsa.pem, 'rsa.pem'),
      await importPublicKey(JSON.stringify(await exportJWK(ec.publicKey)), 'ec.jwk'),
      await importPublicKey(ed.pem, 'ed.pem'),
    ],
    jwks: importLocalJwks(JSON.stringify(jwks), 'jwks.json').jwks,
  });
});

interface SignOptions { alg?: string; kid?: string; payload?: JWTPayload; omit?: string[] }

/** A token with the standard claims at NOW (exp in one hour) unless overridden. */
async function sign(key: CryptoKey | Uint8Array, options: SignOptions = {}): Promise<string> {
  const alg = options.alg ?? (key instanceof Uint8Array ? 'HS256' : undefined);
  assert.ok(alg, 'alg');
  const claims: JWTPayload = { sub: 'u1', iat: NOW_SEC, exp: NOW_SEC + 3600, runnel: GRANTS, ...options.payload };
  for (const name of options.omit ?? []) delete claims[name];
  return new SignJWT(claims).setProtectedHeader({ alg, ...(options.kid ? { kid: options.kid } : {}) }).sign(key);
}

const secret = (s: string) => new TextEncoder().encode(s);

function unsigned(header: object, payload: object): string {
  const part = (o: object) => base64url.encode(JSON.stringify(o));
  return `${part(header)}.${part(payload)}.`;
}

function assertRefused(result: VerifyResult, failure: string, token?: string): void {
  assert.equal(result.ok, false, 'expected a refusal');
  if (result.ok) return;
  assert.equal(result.code, 'SASL_AUTHENTICATION_FAILED');
  assert.equal(result.failure, failure, `failure (reason: ${result.reason})`);
  if (token) {
    assert.ok(!result.reason.includes(token), 'the reason holds the token');
    for (const part of token.split('.')) if (part.length >= 8) assert.ok(!result.reason.includes(part), 'the reason holds a part of the token');
  }
}

test('verification matrix: only valid tokens pass', async () => {
  const cases: { name: string; token: () => Promise<string | undefined>; failure: string | null }[] = [
    { name: 'no token (undefined)', token: async () => undefined, failure: 'missing' },
    { name: 'no token (empty)', token: async () => '', failure: 'missing' },
    { name: 'expired beyond the clock tolerance', token: () => sign(secret(SECRET), { payload: { exp: NOW_SEC - AuthLimits.clockToleranceSec - 1 } }), failure: 'expired' },
    { name: 'not yet valid (nbf in a minute)', token: () => sign(secret(SECRET), { payload: { nbf: NOW_SEC + 60 } }), failure: 'not_yet_valid' },
    { name: 'forged HS256 signature (another secret)', token: () => sign(secret(OTHER_SECRET)), failure: 'signature' },
    { name: 'forged RS256 signature (another RSA key)', token: () => sign(rsaOther.privateKey, { alg: 'RS256' }), failure: 'signature' },
    { name: 'tampered payload', token: async () => {
      const [h, , s] = (await sign(secret(SECRET))).split('.');
      return `${h}.${base64url.encode(JSON.stringify({ sub: 'u1', exp: NOW_SEC + 3600, runnel: { admin: true } }))}.${s}`;
    }, failure: 'signature' },
    { name: 'alg none', token: async () => unsigned({ alg: 'none', typ: 'JWT' }, { sub: 'u1', exp: NOW_SEC + 3600, runnel: { admin: true } }), failure: 'algorithm' },
    { name: 'alg NONE', token: async () => unsigned({ alg: 'NONE' }, { sub: 'u1', exp: NOW_SEC + 3600, runnel: {} }), failure: 'algorithm' },
    { name: 'HS256 signed with the RSA public key PEM as the secret (algorithm confusion)', token: () => sign(secret(rsa.pem)), failure: 'signature' },
    { name: 'HS512 (not accepted)', token: () => sign(secret(SECRET), { alg: 'HS512' }), failure: 'algorithm' },
    { name: 'unknown kid (RS256, not in the JWKS, no static key fits)', token: () => sign(rsaOther.privateKey, { alg: 'RS256', kid: 'nope' }), failure: 'signature' },
    { name: 'missing sub', token: () => sign(secret(SECRET), { omit: ['sub'] }), failure: 'claim_invalid' },
    { name: 'missing exp', token: () => sign(secret(SECRET), { omit: ['exp'] }), failure: 'claim_invalid' },
    { name: 'no runnel claim', token: () => sign(secret(SECRET), { omit: ['runnel'] }), failure: 'grants_invalid' },
    { name: 'malformed', token: async () => 'not-a-jwt', failure: 'malformed' },
    { name: 'three garbage parts', token: async () => '!!.??.**', failure: 'malformed' },
    { name: 'too long', token: async () => 'x'.repeat(AuthLimits.maxTokenChars + 1), failure: 'malformed' },
    { name: 'valid HS256', token: () => sign(secret(SECRET)), failure: null },
    { name: 'valid HS256 within the clock tolerance', token: () => sign(secret(SECRET), { payload: { exp: NOW_SEC - AuthLimits.clockToleranceSec + 5 } }), failure: null },
    { name: 'valid HS256 with nbf within the clock tolerance', token: () => sign(secret(SECRET), { payload: { nbf: NOW_SEC + AuthLimits.clockToleranceSec - 5 } }), failure: null },
    { name: 'valid RS256 (PEM)', token: () => sign(rsa.privateKey, { alg: 'RS256' }), failure: null },
    { name: 'valid ES256 (JWK)', token: () => sign(ec.privateKey, { alg: 'ES256' }), failure: null },
    { name: 'valid EdDSA (PEM)', token: () => sign(ed.privateKey, { alg: 'EdDSA' }), failure: null },
    { name: 'valid Ed25519 alg name (PEM)', token: () => sign(ed.privateKey, { alg: 'Ed25519' }), failure: null },
    { name: 'valid RS256 from the JWKS (kid)', token: () => sign(jwksRsa.privateKey, { alg: 'RS256', kid: 'jwks-rs' }), failure: null },
    { name: 'valid ES256 from the JWKS (kid)', token: () => sign(jwksEc.privateKey, { alg: 'ES256', kid: 'jwks-es' }), failure: null },
    { name: 'valid ES256 from the JWKS (no kid)', token: () => sign(jwksEc.privateKey, { alg: 'ES256' }), failure: null },
    { name: 'JWKS key under the wrong alg (ES256 key, RS256 header)', token: () => sign(jwksRsa.privateKey, { alg: 'RS256', kid: 'jwks-es' }), failure: 'signature' },
  ];
  for (const c of cases) {
    const token = await c.token();
    const result = await verifier.verify(token, NOW_MS);
    if (c.failure === null) {
      assert.equal(result.ok, true, `${c.name}: ${result.ok ? '' : result.reason}`);
      if (result.ok) {
        assert.equal(result.principal.subject, 'u1', c.name);
        assert.equal(result.principal.isAnonymous, false);
        assert.ok(result.principal.grants.publish.matches('activity.clicks'), c.name);
        assert.ok(!result.principal.grants.publish.matches('dash.x'), c.name);
        assert.ok(result.principal.grants.subscribe.matches('dash.x'), c.name);
        assert.ok(result.principal.grants.group.matches('g-1'), c.name);
        assert.equal(result.principal.grants.admin, false);
      }
    } else {
      try {
        assertRefused(result, c.failure, token);
      } catch (error) {
        (error as Error).message = `${c.name}: ${(error as Error).message}`;
        throw error;
      }
    }
  }
});

test('unknown kid against a JWKS-only verifier is refused unknown_key; a kid the JWKS holds passes', async () => {
  const jwks = importLocalJwks(JSON.stringify({ keys: [{ ...(await exportJWK(jwksRsa.publicKey)), kid: 'k1' }] }), 'jwks.json').jwks;
  const only = createTokenVerifier({ keys: [], jwks });
  assertRefused(await only.verify(await sign(jwksRsa.privateKey, { alg: 'RS256', kid: 'k2' }), NOW_MS), 'unknown_key');
  assert.equal((await only.verify(await sign(jwksRsa.privateKey, { alg: 'RS256', kid: 'k1' }), NOW_MS)).ok, true);
  // A JWKS never verifies HS256, whatever it holds.
  assertRefused(await only.verify(await sign(secret(SECRET)), NOW_MS), 'unknown_key');
});

test('algorithm confusion: with only an RSA public key configured, an HS256 token signed with its PEM is refused', async () => {
  const rsaOnly = createTokenVerifier({ keys: [await importPublicKey(rsa.pem, 'rsa.pem')] });
  for (const material of [rsa.pem, rsa.pem.trim(), JSON.stringify(await exportJWK(rsa.publicKey))]) {
    const token = await sign(secret(material));
    assertRefused(await rsaOnly.verify(token, NOW_MS), 'unknown_key', token);
  }
  assert.equal((await rsaOnly.verify(await sign(rsa.privateKey, { alg: 'RS256' }), NOW_MS)).ok, true);
});

test('issuer and audience are enforced when configured', async () => {
  const strict = createTokenVerifier({ keys: [hs256Key(SECRET, 'secret')], issuer: 'https://auth.example', audience: ['runnel', 'runnel-eu'] });
  const good = await sign(secret(SECRET), { payload: { iss: 'https://auth.example', aud: 'runnel-eu' } });
  assert.equal((await strict.verify(good, NOW_MS)).ok, true);
  assertRefused(await strict.verify(await sign(secret(SECRET), { payload: { iss: 'https://evil.example', aud: 'runnel' } }), NOW_MS), 'claim_invalid');
  assertRefused(await strict.verify(await sign(secret(SECRET), { payload: { iss: 'https://auth.example', aud: 'other' } }), NOW_MS), 'claim_invalid');
  assertRefused(await strict.verify(await sign(secret(SECRET), { payload: { aud: 'runnel' } }), NOW_MS), 'claim_invalid');
  assertRefused(await strict.verify(await sign(secret(SECRET), { payload: { iss: 'https://auth.example' } }), NOW_MS), 'claim_invalid');
});

test('secrets rotate: a token signed with any configured secret passes', async () => {
  const rotating = createTokenVerifier({ keys: [hs256Key(SECRET, 'new'), hs256Key(OTHER_SECRET, 'old')] });
  assert.equal((await rotating.verify(await sign(secret(SECRET)), NOW_MS)).ok, true);
  assert.equal((await rotating.verify(await sign(secret(OTHER_SECRET)), NOW_MS)).ok, true);
});

test('time is the nowMs passed in: the same token is valid, then expired', async () => {
  const token = await sign(secret(SECRET));
  assert.equal((await verifier.verify(token, NOW_MS + 3_599_000)).ok, true);
  assertRefused(await verifier.verify(token, NOW_MS + (3600 + AuthLimits.clockToleranceSec + 1) * 1000), 'expired');
  const result = await verifier.verify(token, NOW_MS);
  assert.ok(result.ok);
  assert.equal(result.principal.expiresAtMs, (NOW_SEC + 3600) * 1000);
});

test('bad grants are refused with the claim named, never its value', async () => {
  const cases: [unknown, string][] = [
    [{ publish: ['bad pattern!'] }, 'runnel.publish[0]'],
    [{ publish: Array.from({ length: AuthLimits.maxPatternsPerGrant + 1 }, (_, i) => `t${i}`) }, 'runnel.publish'],
    [{ subscribe: ['x'.repeat(AuthLimits.maxTopicPatternChars + 1)] }, 'runnel.subscribe[0]'],
    [{ group: ['ok', 'bad\u0000'] }, 'runnel.group[1]'],
    [{ admin: 'yes' }, 'runnel.admin'],
    [{ publsh: ['a'] }, 'runnel'],
    ['admin', 'runnel'],
  ];
  for (const [runnel, where] of cases) {
    const token = await sign(secret(SECRET), { payload: { runnel } as JWTPayload });
    const result = await verifier.verify(token, NOW_MS);
    assertRefused(result, 'grants_invalid', token);
    assert.ok(!result.ok && result.reason.includes(where), `${where}: ${!result.ok && result.reason}`);
    assert.ok(!result.ok && !result.reason.includes('bad pattern!'));
  }
  const longSub = await sign(secret(SECRET), { payload: { sub: 'u'.repeat(AuthLimits.maxSubjectChars + 1) } });
  assertRefused(await verifier.verify(longSub, NOW_MS), 'grants_invalid');
});

test('an empty runnel claim authenticates with no grants', async () => {
  const result = await verifier.verify(await sign(secret(SECRET), { payload: { runnel: {} } }), NOW_MS);
  assert.ok(result.ok);
  assert.ok(result.principal.grants.publish.isEmpty && result.principal.grants.subscribe.isEmpty && result.principal.grants.group.isEmpty);
  assert.equal(result.principal.grants.admin, false);
});

test('the anonymous verifier admits everyone as the anonymous principal', async () => {
  const anonymous = createAnonymousVerifier();
  assert.equal(anonymous.mode, 'anonymous');
  for (const token of [undefined, '', 'garbage']) {
    const result = await anonymous.verify(token, NOW_MS);
    assert.ok(result.ok && result.principal.isAnonymous && result.principal.grants.admin);
  }
});

test('property: verify never throws and never passes random input', async () => {
  const jwtLike = fc.tuple(fc.base64String(), fc.base64String(), fc.base64String()).map((parts) => parts.join('.').replace(/[+/=]/g, 'A'));
  await fc.assert(fc.asyncProperty(fc.oneof(fc.string({ maxLength: 300 }), jwtLike), async (token) => {
    const result = await verifier.verify(token, NOW_MS);
    assert.equal(result.ok, false);
    if (!result.ok && token.length >= 8) assert.ok(!result.reason.includes(token));
  }), { numRuns: 300 });
});

test('property: a header with a random alg is refused before any key is tried', async () => {
  await fc.assert(fc.asyncProperty(fc.string({ maxLength: 20 }).filter((a) => !['HS256', 'RS256', 'ES256', 'EdDSA', 'Ed25519'].includes(a)), async (alg) => {
    const result = await verifier.verify(unsigned({ alg }, { sub: 'u1', exp: NOW_SEC + 60, runnel: { admin: true } }), NOW_MS);
    assertRefused(result, 'algorithm');
  }), { numRuns: 100 });
});
