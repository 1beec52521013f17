/**
 * `@runnel/client` and `@runnel/worker` as users install them (issue 13):
 * `npm pack` each (its `prepack` builds dist/), `npm install` the two
 * tarballs into a fresh temporary project (with zod and ws, from npm's
 * cache when it has them), then use them with no TypeScript loader and
 * without the `runnel-source` condition the other tests run under:
 * - plain Node ESM: produce with `@runnel/client/producer`, consume with
 *   `@runnel/client/consumer`, and a `createClient` round trip against a real
 *   broker child;
 * - TypeScript: an app type-checks against the shipped `.d.ts` (and a wrong
 *   value for a typed topic does not);
 * - the browser: an esbuild bundle of the installed packages, served by the
 *   broker, runs in real Chromium: `createClient` with IndexedDB storage, and
 *   `connectShared` through the shipped `runnel-worker.js`.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import type { Browser } from 'playwright-core';
import { BrokerProcess } from '../e2e/harness/broker-process.ts';
import { BrokerHttp } from '../e2e/harness/broker-http.ts';
import { launchChromium } from '../e2e/harness/chromium.ts';

const root = fileURLToPath(new URL('../..', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'runnel-packages-'));
const packs = join(dir, 'packs');
const app = join(dir, 'app');
const site = join(dir, 'site');
const requireRoot = createRequire(join(root, 'package.json'));
const versionOf = (name: string): string => (JSON.parse(readFileSync(requireRoot.resolve(`${name}/package.json`), 'utf8')) as { version: string }).version;
let broker: BrokerProcess | undefined;
let browser: Browser | undefined;

/** A user's shell: no NODE_OPTIONS (neither `--conditions=runnel-source` nor tsx from `npm test`). */
function userEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, npm_config_audit: 'false', npm_config_fund: 'false', npm_config_update_notifier: 'false' };
  delete env.NODE_OPTIONS;
  return env;
}

function run(command: string, args: string[], cwd: string): string {
  const r = spawnSync(command, args, { cwd, env: userEnv(), encoding: 'utf8', timeout: 240_000 });
  assert.equal(r.status, 0, `${command} ${args.join(' ')} in ${cwd} failed (${r.status ?? r.signal}):\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

before(async () => {
  mkdirSync(packs);
  mkdirSync(app);
  mkdirSync(site);
  const tarballs = ['client-sdk', 'worker'].map((pkg) => {
    const out = run('npm', ['pack', '--json', '--pack-destination', packs], join(root, pkg));
    // NB: prepack's own output (the worker bundle's size line) comes before npm's JSON.
    const [{ filename }] = JSON.parse(out.slice(out.indexOf('[\n'))) as { filename: string }[];
    return join(packs, filename);
  });
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'runnel-user-app', private: true, type: 'module' }));
  // NB: --prefer-offline: zod and ws come from npm's cache when it has them (the registry is asked only otherwise).
  run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', ...tarballs, `zod@${versionOf('zod')}`, `ws@${versionOf('ws')}`], app);
  broker = await BrokerProcess.start({ env: { RUNNEL_STATIC_DIR: site } });
  const http = new BrokerHttp(broker.url);
  for (const name of ['pkg-node', 'pkg-browser', 'pkg-worker']) await http.createTopic(name, 3);
}, { timeout: 600_000 });

after(async () => {
  await browser?.close().catch(() => {});
  await broker?.stop();
  rmSync(dir, { recursive: true, force: true });
});

test('the packages ship ESM JavaScript and .d.ts for every export, sideEffects false', () => {
  for (const name of ['@runnel/client', '@runnel/worker']) {
    const pkgDir = join(app, 'node_modules', name);
    const pkg = JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8')) as { type: string; sideEffects: boolean; exports: Record<string, string | Record<string, string>> };
    assert.equal(pkg.type, 'module', name);
    assert.equal(pkg.sideEffects, false, name);
    for (const [subpath, target] of Object.entries(pkg.exports)) {
      const targets = typeof target === 'string' ? { default: target } : target;
      if (typeof target !== 'string') assert.ok(targets.types && targets.default, `${name} ${subpath} has types and default`);
      for (const [condition, file] of Object.entries(targets)) assert.ok(existsSync(join(pkgDir, file)), `${name} ${subpath} (${condition}) ships ${file}`);
      assert.match(targets.default, /\.js$/, `${name} ${subpath} defaults to JavaScript`);
    }
    assert.ok(!existsSync(join(pkgDir, 'src', 'client.test.ts')) && !existsSync(join(pkgDir, 'dist', 'tsconfig.build.tsbuildinfo')), `${name} ships no tests or build state`);
  }
});

test('plain Node ESM (no loader): produce with /producer, consume with /consumer, createClient, against a real broker', () => {
  writeFileSync(join(app, 'node-app.mjs'), `
import { WebSocket } from 'ws';
import * as z from 'zod/mini';
import { createClient, defineTopic, RunnelError } from '@runnel/client';
import { createConsumer } from '@runnel/client/consumer';
import { createProducer } from '@runnel/client/producer';
const [url, n] = [process.argv[2], Number(process.argv[3])];
const topic = defineTopic('pkg-node', z.object({ n: z.number() }));
const producer = createProducer({ urls: [url], WebSocket });
const acks = await Promise.all(Array.from({ length: n }, (_, i) => producer.send(topic, { n: i }, { key: 'k' + (i % 5) })));
await producer.close();
const consumer = createConsumer({ urls: [url], WebSocket });
const seen = [];
await new Promise((resolve, reject) => {
  const sub = consumer.subscribe(topic, (rec) => { seen.push(rec.value.n); if (seen.length === n) resolve(); }, { from: 'earliest' });
  sub.closed.catch(reject);
});
await consumer.close();
const client = createClient({ urls: [url], WebSocket });
let invalid = null;
try { await client.producer.send(topic, { n: 'not a number' }); } catch (e) { invalid = e instanceof RunnelError ? e.errorName : String(e); }
const last = await client.producer.send(topic, { n });
await client.close();
console.log(JSON.stringify({ acked: acks.filter((a) => a.offset >= 0).length, seen: seen.sort((a, b) => a - b), invalid, last, resolved: import.meta.resolve('@runnel/client') }));
`);
  const n = 200;
  const out = JSON.parse(run(process.execPath, ['node-app.mjs', broker!.wsUrl, String(n)], app).trim().split('\n').pop()!) as {
    acked: number; seen: number[]; invalid: string | null; last: { partition: number; offset: number }; resolved: string;
  };
  assert.equal(out.acked, n);
  assert.deepEqual(out.seen, Array.from({ length: n }, (_, i) => i), 'every record consumed once');
  assert.equal(out.invalid, 'SCHEMA_VALIDATION_FAILED');
  assert.ok(out.last.offset >= 0);
  assert.match(out.resolved, /node_modules\/@runnel\/client\/dist\/index\.js$/, 'resolved to the shipped JavaScript');
});

test('TypeScript apps type-check against the shipped .d.ts (typed topics, a transactional handler\'s typed tx)', () => {
  writeFileSync(join(app, 'tsconfig.json'), JSON.stringify({
    compilerOptions: { target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', lib: ['ES2022', 'DOM', 'DOM.Iterable'], strict: true, noEmit: true, skipLibCheck: false, types: [] },
    files: ['typed-app.ts'],
  }));
  writeFileSync(join(app, 'typed-app.ts'), `
import * as z from 'zod/mini';
import { createClient, defineTopic, type ConsumerRecord } from '@runnel/client';
import { createConsumer } from '@runnel/client/consumer';
import { createProducer } from '@runnel/client/producer';
import { indexedDbStorage } from '@runnel/client/indexeddb';
import { connectShared } from '@runnel/worker';
const views = defineTopic('views', z.object({ path: z.string() }));
const consumer = createConsumer({ urls: 'wss://runnel.example/v1/ws', storage: indexedDbStorage() });
consumer.subscribe(views, (rec: ConsumerRecord<{ path: string }>) => { const path: string = rec.value.path; void path; });
void createProducer({ urls: 'wss://runnel.example/v1/ws' }).send(views, { path: '/' }).queued;
consumer.subscribe(views, async (rec, { tx }) => { await tx.objectStore('journal').put(rec.value.path, rec.offset); }, { transactional: { stores: ['journal'] } });
// @ts-expect-error: a store the transactional subscription did not name
consumer.subscribe(views, async (rec, { tx }) => { await tx.objectStore('other').put(rec.value.path, rec.offset); }, { transactional: { stores: ['journal'] } });
// @ts-expect-error: no transaction without \`transactional\`
consumer.subscribe(views, async (rec, { tx }) => { await tx.objectStore('journal').put(rec.value.path, rec.offset); });
// @ts-expect-error: a value that is not the topic's type
void createClient({ urls: 'wss://runnel.example/v1/ws' }).producer.send(views, { path: 1 });
void connectShared({ workerUrl: '/runnel-worker.js', urls: ['wss://runnel.example/v1/ws'] }).then((r) => r.send(views, { path: '/' }));
`);
  const tsc = requireRoot.resolve('typescript/bin/tsc');
  run(process.execPath, [tsc, '-p', 'tsconfig.json', '--pretty', 'false'], app);
});

test('an esbuild browser bundle of the installed packages runs in Chromium: createClient + IndexedDB, connectShared + the shipped worker', { timeout: 180_000 }, async () => {
  const page = `
import * as z from 'zod/mini';
import { createClient, defineTopic } from '@runnel/client';
import { indexedDbStorage } from '@runnel/client/indexeddb';
import { connectShared } from '@runnel/worker';
const url = \`ws://\${location.host}/v1/ws\`;
const n = 50;
const stage = (s) => { window.runnelStage = s; };
async function direct() {
  stage('direct: connecting');
  const topic = defineTopic('pkg-browser', z.object({ n: z.number() }));
  const client = createClient({ urls: [url], storage: indexedDbStorage({ name: 'pkg-test' }) });
  const seen = [];
  const all = new Promise((resolve) => client.subscribe(topic, (rec) => { seen.push(rec.value.n); if (seen.length === n) resolve(); }, { from: 'earliest' }));
  await Promise.all(Array.from({ length: n }, (_, i) => client.producer.send(topic, { n: i })));
  stage('direct: sent, consuming');
  await all;
  await client.close();
  return seen.sort((a, b) => a - b);
}
async function shared() {
  stage('shared: connecting');
  const runnel = await connectShared({ workerUrl: '/runnel-worker.js', urls: [url], databaseName: 'pkg-worker' });
  const seen = [];
  const all = new Promise((resolve) => runnel.subscribe('pkg-worker', (rec) => { window.runnelLast = JSON.stringify(rec); seen.push(rec.value.n); if (seen.length === n) resolve(); }, { from: 'earliest' }));
  stage('shared: sending');
  await Promise.all(Array.from({ length: n }, (_, i) => runnel.send('pkg-worker', { n: i })));
  stage('shared: sent, consuming');
  await all;
  await runnel.close();
  return seen.sort((a, b) => a - b);
}
(async () => ({ direct: await direct(), shared: await shared() }))().catch((e) => ({ error: String(e && e.stack || e) })).then((r) => { window.runnelResult = r; });
`;
  writeFileSync(join(app, 'browser-app.js'), page);
  // NB: as a user's bundler: the installed packages' default (dist) conditions, zod bundled too.
  const result = await build({
    entryPoints: [join(app, 'browser-app.js')], absWorkingDir: app, outdir: site, bundle: true, minify: true, splitting: true,
    format: 'esm', platform: 'browser', target: 'es2022', metafile: true, logLevel: 'silent',
  });
  const inputs = Object.keys(result.metafile.inputs);
  assert.ok(inputs.some((i) => i.includes('node_modules/@runnel/client/dist/')), 'bundled from the installed dist/');
  assert.ok(!inputs.some((i) => i.endsWith('.ts') || i.startsWith('node:')), `no TypeScript source and no Node built-in in the browser bundle: ${inputs.filter((i) => i.endsWith('.ts') || i.startsWith('node:')).join(', ')}`);
  copyFileSync(join(app, 'node_modules/@runnel/worker/dist/runnel-worker.js'), join(site, 'runnel-worker.js'));
  writeFileSync(join(site, 'index.html'), '<!doctype html><meta charset="utf-8"><script type="module" src="/browser-app.js"></script>');
  browser = await launchChromium();
  const tab = await browser.newPage();
  const errors: string[] = [];
  tab.on('pageerror', (e) => errors.push(String(e)));
  await tab.goto(`${broker!.url}/index.html`);
  const logs: string[] = [];
  tab.on('console', (m) => logs.push(m.text()));
  await tab.waitForFunction(() => 'runnelResult' in window, undefined, { timeout: 60_000 }).catch(async (e: unknown) => {
    const stage = await tab.evaluate(() => [(window as unknown as { runnelStage?: string }).runnelStage, (window as unknown as { runnelLast?: string }).runnelLast]);
    throw new Error(`the page did not finish (at "${stage}"): ${String(e)}; console: ${logs.join(' | ')}; errors: ${errors.join(' | ')}`);
  });
  const out = await tab.evaluate(() => (window as unknown as { runnelResult: unknown }).runnelResult) as { direct?: number[]; shared?: number[]; error?: string };
  assert.equal(out.error, undefined, out.error);
  const expected = Array.from({ length: 50 }, (_, i) => i);
  assert.deepEqual(out.direct, expected, 'createClient in the page: every record once');
  assert.deepEqual(out.shared, expected, 'connectShared through the shipped worker: every record once');
  assert.deepEqual(errors, []);
});
