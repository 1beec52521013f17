import { test } from 'node:test';
import assert from 'node:assert/strict';
import { exportJWK, exportSPKI, generateKeyPair, SignJWT } from 'jose';
import { ConfigError } from '../config.ts';
import { loadTokenVerifier, parseAuthConfig, type KeyFileReader } from './config.ts';

const SECRET = 'a-shared-secret-of-at-least-32-bytes!!';
const NOW_MS = 1_700_000_000_000;

function memoryReader(files: Record<string, string>): KeyFileReader & { reads: string[] } {
  const reads: string[] = [];
  return {
    reads,
    async read(path, maxBytes) {
      reads.push(path);
      const text = files[path];
      if (text === undefined) throw new Error('ENOENT: no such file');
      if (text.length > maxBytes) throw new Error('too big');
      return text;
    },
  };
}

function assertConfigError(fn: () => unknown, pattern: RegExp): Promise<void> {
  return assert.rejects(async () => fn(), (error: Error) => error instanceof ConfigError && pattern.test(error.message));
}

test('defaults to anonymous; token mode needs a key; anonymous mode refuses keys it would ignore', async () => {
  assert.equal(parseAuthConfig(undefined).mode, 'anonymous');
  await assertConfigError(() => parseAuthConfig({ mode: 'token' }), /mode "token" needs at least one of hs256Secrets, publicKeyFiles or jwksFile/);
  await assertConfigError(() => parseAuthConfig({ hs256Secrets: [SECRET] }), /mode is "anonymous"/);
  await assertConfigError(() => parseAuthConfig({ mode: 'token', hs256Secret: SECRET }), /auth: Unrecognized key/);
  await assertConfigError(() => parseAuthConfig({ mode: 'token', publicKeyFiles: [''] }), /auth\.publicKeyFiles\[0\]/);
});

test('loads every key file once, relative to baseDir, and verifies with them', async () => {
  const rsa = await generateKeyPair('RS256');
  const ed = await generateKeyPair('EdDSA');
  const reader = memoryReader({
    '/etc/runnel/rsa.pem': await exportSPKI(rsa.publicKey),
    '/etc/runnel/jwks.json': JSON.stringify({ keys: [{ ...(await exportJWK(ed.publicKey)), kid: 'ed1' }] }),
  });
  const verifier = await loadTokenVerifier(
    { mode: 'token', hs256Secrets: [SECRET], publicKeyFiles: ['rsa.pem'], jwksFile: 'jwks.json', issuer: 'iss', audience: 'runnel' },
    { baseDir: '/etc/runnel', reader },
  );
  assert.deepEqual(reader.reads, ['/etc/runnel/rsa.pem', '/etc/runnel/jwks.json']);
  const claims = { sub: 'u1', runnel: { subscribe: ['*'] } };
  const sec = Math.floor(NOW_MS / 1000);
  const tokens = [
    await new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).setIssuer('iss').setAudience('runnel').setExpirationTime(sec + 60).sign(new TextEncoder().encode(SECRET)),
    await new SignJWT(claims).setProtectedHeader({ alg: 'RS256' }).setIssuer('iss').setAudience('runnel').setExpirationTime(sec + 60).sign(rsa.privateKey),
    await new SignJWT(claims).setProtectedHeader({ alg: 'EdDSA', kid: 'ed1' }).setIssuer('iss').setAudience('runnel').setExpirationTime(sec + 60).sign(ed.privateKey),
  ];
  for (const token of tokens) assert.equal((await verifier.verify(token, NOW_MS)).ok, true);
  assert.equal(reader.reads.length, 2, 'no file is read per verification');
});

test('key problems fail loading with a ConfigError naming the file', async () => {
  const reader = memoryReader({ '/k/private.pem': '-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n' });
  await assertConfigError(() => loadTokenVerifier({ mode: 'token', publicKeyFiles: ['missing.pem'] }, { baseDir: '/k', reader }), /auth: cannot read key file \/k\/missing.pem: ENOENT/);
  await assertConfigError(() => loadTokenVerifier({ mode: 'token', publicKeyFiles: ['private.pem'] }, { baseDir: '/k', reader }), /auth: private.pem holds a private key/);
  await assertConfigError(() => loadTokenVerifier({ mode: 'token', hs256Secrets: ['short'] }, { reader }), /auth: auth.hs256Secrets\[0\]: an HS256 secret needs at least 32 bytes/);
});

test('more kid-less keys of one algorithm than a token may be tried against is refused', async () => {
  const secrets = Array.from({ length: 9 }, (_, i) => `${SECRET}-${i}`);
  await assertConfigError(() => loadTokenVerifier({ mode: 'token', hs256Secrets: secrets }, { reader: memoryReader({}) }), /9 HS256 keys without a kid/);
});

test('anonymous mode loads no files and admits everyone', async () => {
  const reader = memoryReader({});
  const verifier = await loadTokenVerifier({}, { reader });
  assert.equal(verifier.mode, 'anonymous');
  assert.deepEqual(reader.reads, []);
  const result = await verifier.verify(undefined, NOW_MS);
  assert.ok(result.ok && result.principal.isAnonymous);
});
