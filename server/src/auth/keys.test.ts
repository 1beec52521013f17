import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { exportJWK, exportPKCS8, exportSPKI, generateKeyPair } from 'jose';
import { AuthConfigError, hs256Key, importLocalJwks, importPublicKey } from './keys.ts';
import { AuthLimits } from './limits.ts';

test('each key type is pinned to its own algorithms', async () => {
  const rsa = await generateKeyPair('RS256');
  const ec = await generateKeyPair('ES256');
  const ed = await generateKeyPair('EdDSA');
  assert.deepEqual(hs256Key('x'.repeat(AuthLimits.minHs256SecretBytes), 's').algorithms, ['HS256']);
  assert.deepEqual((await importPublicKey(await exportSPKI(rsa.publicKey), 'rsa.pem')).algorithms, ['RS256']);
  assert.deepEqual((await importPublicKey(await exportSPKI(ec.publicKey), 'ec.pem')).algorithms, ['ES256']);
  assert.deepEqual((await importPublicKey(await exportSPKI(ed.publicKey), 'ed.pem')).algorithms, ['EdDSA', 'Ed25519']);
  const jwk = await importPublicKey(JSON.stringify({ ...(await exportJWK(ec.publicKey)), kid: 'k1' }), 'ec.jwk');
  assert.deepEqual(jwk.algorithms, ['ES256']);
  assert.equal(jwk.kid, 'k1');
});

function assertConfigError(fn: () => unknown, pattern: RegExp): Promise<void> {
  return assert.rejects(async () => fn(), (error: Error) => error instanceof AuthConfigError && pattern.test(error.message));
}

test('short HS256 secrets are refused (RFC 7518 §3.2)', async () => {
  await assertConfigError(() => hs256Key('short', 'hs256Secrets[0]'), /hs256Secrets\[0\]: an HS256 secret needs at least 32 bytes/);
});

test('private keys, certificates, secrets and small RSA keys are refused as public keys', async () => {
  const rsa = await generateKeyPair('RS256', { extractable: true });
  await assertConfigError(async () => importPublicKey(await exportPKCS8(rsa.privateKey), 'key.pem'), /holds a private key/);
  await assertConfigError(() => importPublicKey('-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----', 'cert.pem'), /certificate/);
  await assertConfigError(async () => importPublicKey(JSON.stringify(await exportJWK(rsa.privateKey)), 'key.jwk'), /private JWK/);
  await assertConfigError(() => importPublicKey(JSON.stringify({ kty: 'oct', k: 'c2VjcmV0' }), 'oct.jwk'), /kty "oct"/);
  await assertConfigError(() => importPublicKey('hello', 'x'), /neither a PEM public key/);
  const small = generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey.export({ type: 'spki', format: 'pem' }).toString();
  await assertConfigError(() => importPublicKey(small, 'small.pem'), /at least 2048 bits/);
  const p384 = generateKeyPairSync('ec', { namedCurve: 'P-384' }).publicKey.export({ type: 'spki', format: 'pem' }).toString();
  await assertConfigError(() => importPublicKey(p384, 'p384.pem'), /unsupported public key/);
});

test('a JWK whose alg does not fit its type is refused', async () => {
  const ec = await generateKeyPair('ES256');
  await assertConfigError(async () => importPublicKey(JSON.stringify({ ...(await exportJWK(ec.publicKey)), alg: 'HS256' }), 'ec.jwk'), /"alg" "HS256" does not fit a EC key/);
  await assertConfigError(async () => importPublicKey(JSON.stringify({ ...(await exportJWK(ec.publicKey)), use: 'enc' }), 'ec.jwk'), /"use" must be "sig"/);
});

test('a JWKS holds public signature keys only', async () => {
  const rsa = await generateKeyPair('RS256', { extractable: true });
  const pub = await exportJWK(rsa.publicKey);
  assert.equal(importLocalJwks(JSON.stringify({ keys: [{ ...pub, kid: 'a' }] }), 'jwks.json').keyCount, 1);
  await assertConfigError(() => importLocalJwks(JSON.stringify({ keys: [{ kty: 'oct', k: 'c2VjcmV0' }] }), 'jwks.json'), /jwks.json keys\[0\].*kty "oct"/);
  await assertConfigError(async () => importLocalJwks(JSON.stringify({ keys: [await exportJWK(rsa.privateKey)] }), 'jwks.json'), /private JWK/);
  await assertConfigError(() => importLocalJwks('{"keys": []}', 'jwks.json'), /no keys/);
  await assertConfigError(() => importLocalJwks('[]', 'jwks.json'), /a JWKS is a JSON object/);
  await assertConfigError(() => importLocalJwks('{', 'jwks.json'), /not valid JSON/);
  const many = { keys: Array.from({ length: AuthLimits.maxConfiguredKeys + 1 }, (_, i) => ({ ...pub, kid: `k${i}` })) };
  await assertConfigError(() => importLocalJwks(JSON.stringify(many), 'jwks.json'), /the limit is 64/);
  const small = generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey.export({ format: 'jwk' });
  await assertConfigError(() => importLocalJwks(JSON.stringify({ keys: [small] }), 'jwks.json'), /at least 2048 bits/);
});

test('messages never hold key material', async () => {
  const secret = 'tiny-secret';
  try {
    hs256Key(secret, 'hs256Secrets[0]');
    assert.fail('expected a refusal');
  } catch (error) {
    assert.ok(!(error as Error).message.includes(secret));
  }
});
