/**
 * Issue 11, "Must show" 3: TLS end to end. A self-signed certificate for
 * localhost / 127.0.0.1 is made at test time (test/security/self-signed-cert.ts,
 * Node's crypto: no openssl needed) and the broker is started with it
 * (`tlsCertFile`/`tlsKeyFile`, the config behind `--tls-cert`/`--tls-key`).
 *
 * (a) The Node SDK (`ws` transport given `ca`) produces and consumes over
 *     `wss://` trusting exactly that certificate; a client that trusts the
 *     system roots, or another self-signed certificate, never connects.
 * (b) Real Chromium told to trust exactly that key
 *     (`--ignore-certificate-errors-spki-list=<base64 sha256 of the SPKI>`)
 *     loads a page whose SDK produces and consumes over `wss://`; a Chromium
 *     trusting another key's SPKI cannot open the socket.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { WebSocket, type ClientOptions } from 'ws';
import { createClient, type ConsumerRecord, type RunnelClient, type WebSocketConstructor } from '@runnel/client';
import { startServer, type RunningServer } from '../../server/src/server.ts';
import { validateLimits } from '../../server/src/limits.ts';
import { selfSignedCert, writeCertFiles } from '../security/self-signed-cert.ts';
import { CHROMIUM_ARGS, CHROMIUM_PATH } from './harness/chromium.ts';
import { PageServer } from './harness/page-server.ts';
import type { RoundTrip } from './pages/tls-page.ts';

process.env.RUNNEL_REQUIRE_NATIVE_UWS = '1';

const cert = selfSignedCert({ commonName: 'localhost' });
const stranger = selfSignedCert({ commonName: 'localhost' });
const files = writeCertFiles(cert);
let dataDir = '';
let server: RunningServer;
let pages: PageServer;
const browsers: Browser[] = [];
const clients: RunnelClient[] = [];
const lines: string[] = [];

const wssUrl = (): string => `wss://127.0.0.1:${server.port}/v1/ws`;

before(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'runnel-tls-e2e-'));
  const started = await Promise.allSettled([
    startServer({
      brokerId: 0, dataDir, host: '127.0.0.1', port: 0, autoCreateTopics: true, defaultPartitions: 1, flushIntervalMs: 0,
      limits: validateLimits({}), tlsCertFile: files.certFile, tlsKeyFile: files.keyFile,
    }, { log: (l) => lines.push(l), warn: (l) => lines.push(l) }).then((s) => (server = s)),
    PageServer.start({ bundles: { tls: 'test/e2e/pages/tls-page.ts' }, pages: { tls: 'tls' } }).then((p) => (pages = p)),
  ]);
  for (const s of started) if (s.status === 'rejected') throw s.reason;
});

after(async () => {
  for (const c of clients) await c.close().catch(() => {});
  for (const b of browsers) await b.close().catch(() => {});
  await pages?.close();
  await server?.close();
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
  files.remove();
});

/** `ws` options: `ca` replaces the system roots; SNI `localhost` while dialling 127.0.0.1 (ws passes both to tls.connect). */
const tlsOptions = (tls: { ca?: string }): ClientOptions => {
  const options: ClientOptions & { servername: string } = { ...tls, servername: 'localhost' };
  return options;
};

/** `ws` with these TLS options. */
function wsWith(tls: { ca?: string }): WebSocketConstructor {
  return class extends WebSocket {
    constructor(url: string) {
      super(url, tlsOptions(tls));
    }
  } as unknown as WebSocketConstructor;
}

function bareSocket(tls: { ca?: string }): Promise<string> {
  return new Promise((resolve) => {
    const ws = new WebSocket(wssUrl(), tlsOptions(tls));
    ws.once('open', () => { ws.close(); resolve('open'); });
    ws.once('error', (e: Error & { code?: string }) => resolve(`error ${e.code ?? ''} ${e.message}`));
  });
}

test('the broker serves wss:// with the generated certificate', () => {
  assert.match(server.url, /^https:\/\/127\.0\.0\.1:\d+$/);
  assert.ok(lines.some((l) => l.includes(`runnel: TLS: CN=localhost (DNS:localhost, IP:127.0.0.1)`) && l.includes(cert.fingerprint256)), lines.join('\n'));
});

test('Node SDK over wss:// trusting exactly this certificate: produce and consume', { timeout: 30_000 }, async () => {
  const producer = createClient({ urls: wssUrl(), WebSocket: wsWith({ ca: cert.certPem }) });
  const consumer = createClient({ urls: wssUrl(), WebSocket: wsWith({ ca: cert.certPem }) });
  clients.push(producer, consumer);
  const COUNT = 200;
  const acks = await Promise.all(Array.from({ length: COUNT }, (_, n) => producer.producer.send('tls-node', { n })));
  assert.deepEqual(acks.map((a) => a.offset), Array.from({ length: COUNT }, (_, i) => i));
  const seen: ConsumerRecord[] = [];
  consumer.subscribe('tls-node', (r) => { seen.push(r); }, { from: 'earliest' });
  const deadline = Date.now() + 15_000;
  while (seen.length < COUNT && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  assert.deepEqual(seen.map((r) => (r.value as { n: number }).n), Array.from({ length: COUNT }, (_, i) => i));
});

test('a Node client that does not trust the certificate never connects', { timeout: 30_000 }, async () => {
  assert.match(await bareSocket({}), /^error (DEPTH_ZERO_SELF_SIGNED_CERT|SELF_SIGNED_CERT_IN_CHAIN) /, 'system roots only');
  assert.match(await bareSocket({ ca: stranger.certPem }), /^error \S+ .*(self[- ]signed|signature|verify)/i, 'another self-signed certificate');
  assert.equal(await bareSocket({ ca: cert.certPem }), 'open', 'and the right one opens');
  const sdk = createClient({ urls: wssUrl(), WebSocket: wsWith({}), reconnect: { initialDelayMs: 50, maxDelayMs: 200 } });
  clients.push(sdk);
  const states: string[] = [];
  sdk.on('statechange', ({ state }) => states.push(state));
  const sent = sdk.producer.send('tls-refused', { n: 1 });
  sent.catch(() => {});
  const outcome = await Promise.race([sent.then(() => 'acked', () => 'rejected'), new Promise((r) => setTimeout(() => r('pending'), 1500))]);
  assert.equal(outcome, 'pending', 'the record waits in the outbox');
  assert.ok(!states.includes('connected'), `states: ${states.join(', ')}`);
  assert.ok(states.includes('reconnecting'), `it keeps retrying: ${states.join(', ')}`);
});

async function chromiumTrusting(spkiSha256Base64: string): Promise<Browser> {
  const browser = await chromium.launch({ executablePath: CHROMIUM_PATH, headless: true, args: [...CHROMIUM_ARGS, `--ignore-certificate-errors-spki-list=${spkiSha256Base64}`] });
  browsers.push(browser);
  return browser;
}

test('Chromium trusting exactly this key: the page\'s SDK produces and consumes over wss://', { timeout: 60_000 }, async () => {
  const browser = await chromiumTrusting(cert.spkiSha256Base64);
  const page = await (await browser.newContext()).newPage();
  const log: string[] = [];
  page.on('console', (m) => log.push(`[${m.type()}] ${m.text()}`));
  page.on('pageerror', (e) => log.push(`[pageerror] ${e.message}`));
  await page.goto(`${pages.url}/tls.html`);
  await page.waitForFunction(() => window.runnelTls !== undefined);
  assert.equal(await page.evaluate((url) => window.runnelTls.probe(url), wssUrl()), 'open', log.join('\n'));
  const COUNT = 100;
  const result: RoundTrip = await page.evaluate((o) => window.runnelTls.roundTrip(o), { url: wssUrl(), topic: 'tls-browser', count: COUNT, timeoutMs: 15_000 });
  assert.deepEqual(result.acked, Array.from({ length: COUNT }, (_, i) => i), `${JSON.stringify(result.errors)}\n${log.join('\n')}`);
  assert.deepEqual(result.seen, Array.from({ length: COUNT }, (_, i) => i));
  assert.deepEqual(result.errors, []);
  // The records are the broker's: what Chromium sent over TLS is in the log.
  assert.equal(server.broker.describeTopic('tls-browser').partitions[0].highWatermark, COUNT);
});

test('Chromium trusting another key cannot open the socket', { timeout: 60_000 }, async () => {
  const browser = await chromiumTrusting(stranger.spkiSha256Base64);
  const page = await (await browser.newContext()).newPage();
  await page.goto(`${pages.url}/tls.html`);
  await page.waitForFunction(() => window.runnelTls !== undefined);
  assert.match(await page.evaluate((url) => window.runnelTls.probe(url), wssUrl()), /^error then close 1006$/);
});
