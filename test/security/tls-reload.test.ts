/**
 * TLS certificate reload through `runnel start` (server/src/tls.ts,
 * server/src/cli/start.ts): the broker process starts with cert A; the
 * files are replaced with cert B and the process gets SIGHUP. Without a
 * restart and without dropping anyone: new handshakes naming `localhost`
 * (SNI) get B, a Node SDK client connected before the reload keeps its
 * connection and goes on producing, a new client trusting only B produces
 * and consumes, a client trusting only A is now refused, a client without
 * SNI (connecting by IP) still gets A (the documented limit). A bad pair on
 * the next SIGHUP is refused with a warning and B stays served.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { connect } from 'node:tls';
import { WebSocket, type ClientOptions } from 'ws';
import { createClient, type ConsumerRecord, type RunnelClient, type WebSocketConstructor } from '@runnel/client';
import { SecureBroker } from './secure-broker.ts';
import { selfSignedCert, writeCertFiles } from './self-signed-cert.ts';

const certA = selfSignedCert({ commonName: 'runnel-reload-a' });
const certB = selfSignedCert({ commonName: 'runnel-reload-b' });
const files = writeCertFiles(certA);
let broker: SecureBroker;
const clients: RunnelClient[] = [];

before(async () => {
  broker = await SecureBroker.start(['--tls-cert', files.certFile, '--tls-key', files.keyFile, '--default-partitions', '1']);
});
after(async () => {
  for (const c of clients) await c.close().catch(() => {});
  await broker?.stop();
  files.remove();
});

/** `ws` trusting exactly `ca`, naming `localhost` in the handshake (SNI) while connecting to 127.0.0.1. */
function wsTrusting(ca: string): WebSocketConstructor {
  return class extends WebSocket {
    constructor(url: string) {
      const options: ClientOptions & { servername: string } = { ca, servername: 'localhost' };
      super(url, options);
    }
  } as unknown as WebSocketConstructor;
}

function client(ca: string): RunnelClient {
  const c = createClient({ urls: broker.wsUrl, WebSocket: wsTrusting(ca), reconnect: { initialDelayMs: 50, maxDelayMs: 200 }, requestTimeoutMs: 5000 });
  clients.push(c);
  return c;
}

function peerFingerprint(servername: string | undefined): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port: broker.port, rejectUnauthorized: false, ...(servername === undefined ? {} : { servername }) }, () => {
      resolve(socket.getPeerCertificate().fingerprint256);
      socket.destroy();
    });
    socket.once('error', reject);
  });
}

function healthz(ca: string): Promise<number> {
  return new Promise((resolve, reject) => {
    request({ host: '127.0.0.1', port: broker.port, path: '/healthz', ca, servername: 'localhost' }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    }).once('error', reject).end();
  });
}

test('SIGHUP swaps the certificate for new SNI handshakes; open connections and the listen socket stay', { timeout: 60_000 }, async () => {
  assert.equal(broker.scheme, 'https');
  assert.match(await broker.waitForLine('stdout', /^runnel: TLS: CN=runnel-reload-a \(DNS:localhost, IP:127\.0\.0\.1\).*SIGHUP reloads it/), /sha256/);
  assert.equal(await peerFingerprint('localhost'), certA.fingerprint256);

  const early = client(certA.certPem);
  const states: string[] = [];
  early.on('statechange', ({ state }) => states.push(state));
  const first = await early.producer.send('reload-topic', { n: 1 });
  assert.equal(first.offset, 0);

  await new Promise((r) => setTimeout(r, 50));
  const statesBeforeReload = states.length;
  writeCertFiles(certB, files.dir);
  const from = broker.stdout.length;
  broker.signal('SIGHUP');
  assert.match(await broker.waitForLine('stdout', /TLS: reloaded/, from), /reloaded CN=runnel-reload-b .*new connections naming localhost \(SNI\) get it/);

  assert.equal(await peerFingerprint('localhost'), certB.fingerprint256, 'new SNI handshakes get B');
  assert.equal(await peerFingerprint(undefined), certA.fingerprint256, 'no SNI (a client connecting by IP address): still A until a restart');
  assert.equal(await healthz(certB.certPem), 200, 'HTTP routes are served under the new certificate');

  // The connection made before the reload is the same one, and still works.
  const second = await early.producer.send('reload-topic', { n: 2 });
  assert.equal(second.offset, 1);
  assert.deepEqual(states.slice(statesBeforeReload), [], 'no reconnect since the reload');
  assert.ok(!states.includes('reconnecting'), `states: ${states.join(', ')}`);

  // A client trusting only B produces and consumes.
  const late = client(certB.certPem);
  await late.producer.send('reload-topic', { n: 3 });
  const seen: ConsumerRecord[] = [];
  late.subscribe('reload-topic', (r) => { seen.push(r); }, { from: 'earliest' });
  const deadline = Date.now() + 10_000;
  while (seen.length < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  assert.deepEqual(seen.map((r) => (r.value as { n: number }).n), [1, 2, 3]);

  // A client trusting only A is refused now (for names SNI selects).
  await assert.rejects(healthz(certA.certPem), /self[- ]signed|unable to verify|certificate/i);

  // A bad pair: refused with a warning, B still served, the broker alive.
  writeFileSync(files.keyFile, certA.keyPem);
  const fromErr = broker.stderr.length;
  broker.signal('SIGHUP');
  assert.match(await broker.waitForLine('stderr', /TLS: not reloaded/, fromErr), /WARNING: TLS: not reloaded, still serving CN=runnel-reload-b .*is not the private key of the certificate/);
  assert.equal(await peerFingerprint('localhost'), certB.fingerprint256);
  assert.equal((await early.producer.send('reload-topic', { n: 4 })).offset, 3);
});
