/**
 * tls.ts: validation of the certificate/key files (each refusal a
 * ConfigError naming the file and the fix), and TlsServer's reload on a
 * real uWS SSLApp: new SNI handshakes get the new certificate, clients
 * without SNI keep the start-time one, a refused reload changes nothing
 * (and never reaches uWS, which would crash on a mismatched pair).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import uws from './broker/uws.ts';
import { ConfigError } from './config-error.ts';
import { TlsLimits, TlsServer, describeReload, describeTlsIdentity, loadTlsIdentity, reloadAndLog, tlsWarnings } from './tls.ts';
import { selfSignedCert, type SelfSignedCert } from '../../test/security/self-signed-cert.ts';

const DAY_MS = 86_400_000;
const certA = selfSignedCert({ commonName: 'runnel-a' });
const certB = selfSignedCert({ commonName: 'runnel-b' });

function files(cert: Pick<SelfSignedCert, 'certPem' | 'keyPem'>, dir = mkdtempSync(join(tmpdir(), 'runnel-tls-test-'))) {
  const certFile = join(dir, 'cert.pem');
  const keyFile = join(dir, 'key.pem');
  writeFileSync(certFile, cert.certPem);
  writeFileSync(keyFile, cert.keyPem);
  return { certFile, keyFile, dir };
}

function refused(fn: () => unknown, pattern: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof ConfigError, `a ConfigError, got ${String(e)}`);
    assert.match(e.message, pattern);
    assert.doesNotMatch(e.message, /[A-Za-z0-9+/]{40,}/, 'no PEM body (key material) in the message');
    return true;
  });
}

test('a valid pair: names, fingerprint and expiry are read; the summary names them', () => {
  const f = files(certA);
  try {
    const id = loadTlsIdentity(f);
    assert.deepEqual(id.dnsNames, ['localhost']);
    assert.deepEqual(id.ipAddresses, ['127.0.0.1']);
    assert.equal(id.fingerprint256, certA.fingerprint256);
    assert.equal(id.chainLength, 1);
    assert.ok(id.validToMs > Date.now() + 6 * DAY_MS);
    assert.match(describeTlsIdentity(id), /^CN=runnel-a \(DNS:localhost, IP:127\.0\.0\.1\), valid until 20\d\d-.*sha256 [0-9A-F:]+$/);
    assert.deepEqual(tlsWarnings(id), []);
    assert.match(tlsWarnings(id, id.validToMs - 3 * DAY_MS)[0], /expires in 3 day\(s\)/);
  } finally {
    rmSync(f.dir, { recursive: true, force: true });
  }
});

test('refusals: each names the file and says what to do', () => {
  const dir = mkdtempSync(join(tmpdir(), 'runnel-tls-test-'));
  try {
    const ok = files(certA, dir);
    const write = (name: string, text: string | Buffer) => {
      const path = join(dir, name);
      writeFileSync(path, text);
      return path;
    };
    mkdirSync(join(dir, 'a-dir'));
    const rsa1024 = generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
    const encrypted = certA.privateKey.export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase: 'pw' }) as string;
    const expired = selfSignedCert({ notBefore: new Date(Date.now() - 10 * DAY_MS), notAfter: new Date(Date.now() - DAY_MS) });
    const future = selfSignedCert({ notBefore: new Date(Date.now() + DAY_MS), notAfter: new Date(Date.now() + 10 * DAY_MS) });
    const cases: { name: string; certFile?: string; keyFile?: string; error: RegExp }[] = [
      { name: 'missing cert file', certFile: join(dir, 'nope.pem'), error: /cannot read --tls-cert .*nope\.pem: ENOENT/ },
      { name: 'missing key file', keyFile: join(dir, 'nope.pem'), error: /cannot read --tls-key .*nope\.pem: ENOENT/ },
      { name: 'a directory', certFile: join(dir, 'a-dir'), error: /--tls-cert .*a-dir is not a regular file/ },
      { name: 'too big', certFile: write('big.pem', Buffer.alloc(TlsLimits.maxPemFileBytes + 1, 0x41)), error: /has 1048577 bytes; a PEM file is at most/ },
      { name: 'not PEM', certFile: write('junk.pem', 'hello'), error: /holds no PEM certificate/ },
      { name: 'the key given as the certificate', certFile: ok.keyFile, error: /holds no PEM certificate .*it holds a private key/ },
      { name: 'the certificate given as the key', keyFile: ok.certFile, error: /--tls-key .* holds no PEM private key .*it holds a certificate/ },
      { name: 'a damaged certificate', certFile: write('damaged.pem', certA.certPem.replace(/\n[A-Za-z0-9+/]{64}\n/, '\nAAAA\n')), error: /certificate 1 is not a valid X\.509 certificate/ },
      { name: 'a damaged key', keyFile: write('damaged-key.pem', '-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n'), error: /is not a valid PEM private key/ },
      { name: 'two keys', keyFile: write('two-keys.pem', certA.keyPem + certB.keyPem), error: /holds 2 private keys/ },
      { name: 'the key of another certificate', keyFile: write('other-key.pem', certB.keyPem), error: /--tls-key .*other-key\.pem is not the private key of the certificate in --tls-cert .*\(CN=runnel-a, sha256 / },
      { name: 'an encrypted key', keyFile: write('enc.pem', encrypted), error: /is encrypted; the broker takes no passphrase/ },
      { name: 'a small RSA key', keyFile: write('rsa1024.pem', rsa1024), error: /is a 1024-bit RSA key; at least 2048/ },
      { name: 'a chain out of order', certFile: write('chain.pem', certA.certPem + certB.certPem), error: /certificate 2 \(CN=runnel-b\) did not issue certificate 1; list the server's certificate first/ },
      { name: 'expired', ...files(expired, mkdtempSync(join(dir, 'x-'))), error: /the certificate expired at 20/ },
      { name: 'not valid yet', ...files(future, mkdtempSync(join(dir, 'f-'))), error: /is not valid before 20/ },
    ];
    for (const c of cases) {
      refused(() => loadTlsIdentity({ certFile: c.certFile ?? ok.certFile, keyFile: c.keyFile ?? ok.keyFile }), c.error);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

/** The certificate a TLS handshake gets, with or without SNI. */
function peerFingerprint(port: number, servername: string | undefined): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, rejectUnauthorized: false, ...(servername === undefined ? {} : { servername }) }, () => {
      resolve(socket.getPeerCertificate().fingerprint256);
      socket.destroy();
    });
    socket.once('error', reject);
  });
}

/** One HTTP/1.1 GET over TLS with SNI `localhost`; resolves with the status line and body. */
function get(port: number, path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, servername: 'localhost', rejectUnauthorized: false }, () => socket.write(`GET ${path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n`));
    let text = '';
    socket.on('data', (c: Buffer) => (text += c.toString()));
    socket.once('end', () => resolve(`${text.split('\r\n')[0]} ${text.slice(text.indexOf('\r\n\r\n') + 4)}`));
    socket.once('error', reject);
    setTimeout(() => { socket.destroy(); resolve('timeout'); }, 3000).unref();
  });
}

test('TlsServer.reload: SNI handshakes get the new certificate, routes are served under it, no-SNI keeps the first; a bad pair changes nothing', async () => {
  const f = files(certA);
  const server = TlsServer.create(f);
  server.app.get('/*', (res) => { res.end('hello'); });
  const listen = await new Promise<{ port: number; socket: unknown }>((resolve, reject) => server.app.listen('127.0.0.1', 0, (s) => (s ? resolve({ port: uws.us_socket_local_port(s), socket: s }) : reject(new Error('listen')))));
  const { port } = listen;
  try {
    assert.equal(await peerFingerprint(port, 'localhost'), certA.fingerprint256);
    assert.equal(await peerFingerprint(port, undefined), certA.fingerprint256);
    assert.deepEqual(server.reload(), { ok: true, changed: false, identity: server.identity, serverNames: [], warnings: [] }, 'unchanged files: nothing to do');

    files(certB, f.dir);
    const lines: string[] = [];
    const result = reloadAndLog(server, (l) => lines.push(`log ${l}`), (l) => lines.push(`warn ${l}`));
    assert.ok(result.ok && result.changed);
    assert.deepEqual(result.ok && result.serverNames, ['localhost']);
    assert.match(lines.join('\n'), /^log runnel: TLS: reloaded CN=runnel-b .*new connections naming localhost \(SNI\) get it; clients connecting by IP address \(no SNI\) .*keep the start-time certificate until a restart/);
    assert.equal(await peerFingerprint(port, 'localhost'), certB.fingerprint256);
    assert.equal(await peerFingerprint(port, undefined), certA.fingerprint256, 'no SNI: the SSLApp context, for the life of the app');
    assert.equal(await get(port, '/x'), 'HTTP/1.1 200 OK hello', 'the routes were registered again under the server name');

    // A mismatched pair (uWS would crash on it) and a missing file are refused before uWS sees them.
    writeFileSync(f.keyFile, certA.keyPem);
    const bad = server.reload();
    assert.equal(bad.ok, false);
    assert.match(!bad.ok ? bad.reason : '', /is not the private key of the certificate/);
    assert.match(describeReload(bad, server.identity), /^TLS: not reloaded, still serving CN=runnel-b .*: --tls-key/);
    rmSync(f.certFile);
    assert.match(JSON.stringify(server.reload()), /cannot read --tls-cert/);
    assert.equal(await peerFingerprint(port, 'localhost'), certB.fingerprint256, 'still the last good certificate');
    assert.equal(server.identity.fingerprint256, certB.fingerprint256);

    // And back to A: a second swap of the same name works too.
    files(certA, f.dir);
    assert.ok(server.reload().ok);
    assert.equal(await peerFingerprint(port, 'localhost'), certA.fingerprint256);
    assert.equal(await get(port, '/y'), 'HTTP/1.1 200 OK hello');
    assert.throws(() => server.app.get('/late', (res) => { res.end(); }), /routes must be registered before the first certificate reload/);
  } finally {
    uws.us_listen_socket_close(listen.socket as never);
    rmSync(f.dir, { recursive: true, force: true });
  }
});

test('a certificate without DNS names can be served at start but not swapped in by a reload', () => {
  const f = files(certA);
  try {
    const server = TlsServer.create(f);
    files(selfSignedCert({ altNames: ['127.0.0.1'] }), f.dir);
    const result = server.reload();
    assert.equal(result.ok, false);
    assert.match(!result.ok ? result.reason : '', /has no DNS name in its subjectAltName, so no TLS handshake \(SNI\) can select it; restart the broker/);
  } finally {
    rmSync(f.dir, { recursive: true, force: true });
  }
});
