/**
 * `npm run bench -- client`: (1) catch-up throughput of one browser
 * consumer: a real broker is pre-filled with N × 100-byte JSON records
 * (binary RecordBatch POSTs), then a page in headless Chromium consumes
 * the topic from the earliest offset with `@runnel/client`; the figure is
 * records decoded and handed to the handler per second (goal ≥ 1,000,000/s,
 * or ≥ 90 % of the ceiling if that is lower); in the same run, the raw
 * ceiling of a Chromium WebSocket on this machine: a plain uWS server
 * pushing pre-encoded RecordsFrames of the broker's catch-up read size
 * (catchUpReadBytes, whole stored batches) with no credit round trips to a
 * page that only counts bytes (client-raw-ceiling.ts), measured before and
 * after the SDK run (the better one is the ceiling: noise only lowers it).
 * (2) the browser bundle size, minified + gzip, without zod (a peer
 * dependency the core never imports): the whole `@runnel/client` entry
 * with the IndexedDB subpath, and the entry alone.
 * Env: RUNNEL_BENCH_RECORDS (default 2,000,000), RUNNEL_BENCH_PARTITIONS (default 1),
 * RUNNEL_BENCH_BATCH_RECORDS (records per stored batch, default 1,000 ≈ 108 KB),
 * RUNNEL_BENCH_CREDIT_BYTES (the consumer's creditWindowBytes; default: the SDK's),
 * RUNNEL_BENCH_MAX_CREDIT_BYTES (the consumer's maxCreditWindowBytes; default: the SDK's),
 * RUNNEL_BENCH_PROFILE=1 prints the page's top functions by self time (CDP profiler).
 */
import { build } from 'esbuild';
import { cpus, loadavg } from 'node:os';
import { gzipSync } from 'node:zlib';
import { encodeRecordBatch, type RecordInput } from '@runnel/client/codec';
import { assertNativeUws } from '../../server/src/broker/uws.ts';
import { BrokerProcess } from '../e2e/harness/broker-process.ts';
import { BrokerHttp } from '../e2e/harness/broker-http.ts';
import { launchChromium } from '../e2e/harness/chromium.ts';
import { PageServer } from '../e2e/harness/page-server.ts';
import type { BenchResult } from '../e2e/pages/bench-page.ts';
import type { RawCeilingResult } from '../e2e/pages/raw-ws-ceiling-page.ts';
import { ceilingFrame, startRawCeilingServer } from './client-raw-ceiling.ts';
import { formatUsage, machineUsage, sampleMachine } from './bench-processes.ts';
import type { Page } from 'playwright-core';

assertNativeUws();

const RECORDS = Number(process.env.RUNNEL_BENCH_RECORDS ?? 2_000_000);
const PARTITIONS = Number(process.env.RUNNEL_BENCH_PARTITIONS ?? 1);
const VALUE_BYTES = 100;
/** Records per POSTed batch (≤ 8000: ~870 KB, under the broker's 1 MiB maxBatchBytes / maxHttpBodyBytes). */
const BATCH_RECORDS = Number(process.env.RUNNEL_BENCH_BATCH_RECORDS ?? 1000);
const PARALLEL_POSTS = 4;
const TOPIC = 'bench-client';
/** The consumer's credit window (client limit creditWindowBytes); undefined = the SDK default. */
const CREDIT_BYTES = process.env.RUNNEL_BENCH_CREDIT_BYTES ? Number(process.env.RUNNEL_BENCH_CREDIT_BYTES) : undefined;
const MAX_CREDIT_BYTES = process.env.RUNNEL_BENCH_MAX_CREDIT_BYTES ? Number(process.env.RUNNEL_BENCH_MAX_CREDIT_BYTES) : undefined;
/** The broker's default catchUpReadBytes (server/src/limits.ts): one catch-up read, one RecordsFrame of at most this. */
const CATCH_UP_READ_BYTES = 1024 * 1024;
const root = new URL('../..', import.meta.url).pathname;

/** One batch of `count` JSON values of exactly VALUE_BYTES bytes each, encoded once and POSTed many times. */
function prefillBatch(count: number): Uint8Array {
  const encoder = new TextEncoder();
  const head = '{"i":1,"pad":"';
  const value = encoder.encode(`${head}${'x'.repeat(VALUE_BYTES - head.length - 2)}"}`);
  const records: RecordInput[] = Array.from({ length: count }, () => ({ value, timestampMs: Date.now() }));
  return encodeRecordBatch({ records });
}

async function prefill(broker: BrokerProcess): Promise<void> {
  const batch = prefillBatch(BATCH_RECORDS);
  const tail = RECORDS % BATCH_RECORDS === 0 ? null : prefillBatch(RECORDS % BATCH_RECORDS);
  const posts = Math.ceil(RECORDS / BATCH_RECORDS);
  let next = 0;
  const worker = async (): Promise<void> => {
    for (let i = next++; i < posts; i = next++) {
      const body = i === posts - 1 && tail ? tail : batch;
      const response = await fetch(`${broker.url}/v1/topics/${TOPIC}/records?partition=${i % PARTITIONS}`, {
        method: 'POST', headers: { 'content-type': 'application/vnd.runnel.recordbatch' }, body: body as BodyInit,
      });
      if (!response.ok) throw new Error(`prefill POST ${i}: HTTP ${response.status} ${await response.text()}`);
    }
  };
  await Promise.all(Array.from({ length: PARALLEL_POSTS }, worker));
}

async function minGzipBytes(source: string): Promise<{ min: number; gzip: number }> {
  const result = await build({
    stdin: { contents: source, resolveDir: root, loader: 'ts' },
    bundle: true, format: 'esm', platform: 'browser', target: 'es2022', minify: true, write: false, external: ['zod'], logLevel: 'silent',
    conditions: ['runnel-source'], // measure the sources, as client-sdk/src/bundle-size.test.ts does
  });
  const bytes = result.outputFiles[0].contents;
  return { min: bytes.length, gzip: gzipSync(bytes, { level: 9 }).length };
}

/** Runs `fn` under the CDP sampling profiler and prints the top functions by self time. */
async function profiled<T>(page: Page, fn: () => Promise<T>): Promise<T> {
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('Profiler.enable');
  await cdp.send('Profiler.setSamplingInterval', { interval: 200 });
  await cdp.send('Profiler.start');
  const result = await fn();
  const { profile } = await cdp.send('Profiler.stop');
  const dt = profile.timeDeltas ?? [];
  const self = new Map<number, number>();
  (profile.samples ?? []).forEach((id, i) => self.set(id, (self.get(id) ?? 0) + (dt[i] ?? 0)));
  const byName = new Map<string, number>();
  for (const node of profile.nodes) {
    const f = node.callFrame;
    const name = `${f.functionName || '(anonymous)'} ${f.url.split('/').pop()}:${f.lineNumber + 1}`;
    byName.set(name, (byName.get(name) ?? 0) + (self.get(node.id) ?? 0));
  }
  const total = [...byName.values()].reduce((a, b) => a + b, 0);
  for (const [name, us] of [...byName].sort((a, b) => b[1] - a[1]).slice(0, 25)) console.log(`  ${((100 * us) / total).toFixed(1).padStart(5)}%  ${name}`);
  return result;
}

const broker = await BrokerProcess.start({ args: (process.env.RUNNEL_BENCH_BROKER_ARGS ?? "").split(" ").filter(Boolean) });
const profile = process.env.RUNNEL_BENCH_PROFILE === '1';
const pages = await PageServer.start({
  bundles: { bench: 'test/e2e/pages/bench-page.ts', raw: 'test/e2e/pages/raw-ws-ceiling-page.ts' }, pages: { bench: 'bench', raw: 'raw' }, minify: !profile,
});
const storedBatch = prefillBatch(BATCH_RECORDS);
const recordBytes = storedBatch.length / BATCH_RECORDS; // stored bytes per record, batch overhead included
const raw = await startRawCeilingServer(ceilingFrame(TOPIC, storedBatch, CATCH_UP_READ_BYTES));

/** Raw ceiling: as many bytes as RECORDS stored records, pushed in catch-up-sized frames; records/s = bytes/s / recordBytes. */
async function rawCeiling(): Promise<{ recordsPerSec: number; mbPerSec: number; ms: number; usage: string }> {
  const page = await browser.newPage();
  try {
    await page.goto(`${pages.url}/raw.html`);
    await page.waitForFunction(() => window.runnelRawCeiling !== undefined);
    const frames = Math.ceil((RECORDS * recordBytes) / raw.frameBytes);
    const before = sampleMachine({}, null);
    const r: RawCeilingResult = await page.evaluate((o) => window.runnelRawCeiling.run(o), { url: raw.wsUrl, frames, expectedBytes: frames * raw.frameBytes, timeoutMs: 300_000 });
    const usage = formatUsage(machineUsage(before, sampleMachine({}, null)));
    if (r.messages !== frames) throw new Error(`raw ceiling page got ${r.messages} of ${frames} frames in ${r.ms} ms`);
    return { recordsPerSec: Math.round((r.bytes / recordBytes) * 1000 / r.ms), mbPerSec: Math.round(r.bytes / 1e3 / r.ms), ms: r.ms, usage };
  } finally {
    await page.close();
  }
}
const browser = await launchChromium();
try {
  await new BrokerHttp(broker.url).createTopic(TOPIC, PARTITIONS);
  const t = performance.now();
  await prefill(broker);
  const prefillMs = performance.now() - t;
  console.log(`prefill: ${RECORDS} × ${VALUE_BYTES}-byte records in ${PARTITIONS} partition(s), ${(prefillMs / 1000).toFixed(1)} s`);

  const rawBefore = await rawCeiling();
  console.log(`raw ceiling (before): ${rawBefore.recordsPerSec.toLocaleString('en')} records/s (${rawBefore.mbPerSec} MB/s of frames of ${raw.frameBytes} B); ${rawBefore.usage}`);

  const page = await browser.newPage();
  page.on('pageerror', (e) => console.error('[pageerror]', e.message));
  await page.goto(`${pages.url}/bench.html`);
  await page.waitForFunction(() => window.runnelBench !== undefined);
  const run = (): Promise<BenchResult> => page.evaluate((o) => window.runnelBench.run(o), { urls: [broker.wsUrl], topic: TOPIC, expected: RECORDS, timeoutMs: 300_000, creditWindowBytes: CREDIT_BYTES, maxCreditWindowBytes: MAX_CREDIT_BYTES });
  // The broker's cores and the rest of the machine's (Chromium's processes, the bench) during the catch-up.
  const before = sampleMachine({ broker: broker.pid }, null);
  const result = profile ? await profiled(page, run) : await run();
  const usage = machineUsage(before, sampleMachine({ broker: broker.pid }, null));
  if (result.records !== RECORDS) throw new Error(`consumer got ${result.records} of ${RECORDS} records in ${result.ms} ms`);
  const recordsPerSec = Math.round((result.records * 1000) / result.ms);
  const mbPerSec = Math.round((result.records * VALUE_BYTES) / 1e3 / result.ms);
  console.log(`catch-up: ${result.records} records handed to the handler in ${(result.ms / 1000).toFixed(2)} s = ${recordsPerSec.toLocaleString('en')} records/s (${mbPerSec} MB/s of values); goal ≥ 1,000,000/s; ${formatUsage(usage)}`);
  await page.close();
  const rawAfter = await rawCeiling();
  const ceiling = Math.max(rawBefore.recordsPerSec, rawAfter.recordsPerSec);
  const ratio = recordsPerSec / ceiling;
  const load = loadavg().map((l) => l.toFixed(2));
  console.log(`raw ceiling (after): ${rawAfter.recordsPerSec.toLocaleString('en')} records/s; ceiling ${ceiling.toLocaleString('en')} records/s; SDK/ceiling ${(100 * ratio).toFixed(1)} %; load average ${load.join(' ')} on ${cpus().length} cores`);

  const full = await minGzipBytes(`export * from '@runnel/client'; export * from '@runnel/client/indexeddb';`);
  const core = await minGzipBytes(`export * from '@runnel/client';`);
  const benchPage = gzipSync(pages.bundleBytes('bench'), { level: 9 }).length;
  console.log(`bundle (min+gzip, no zod, every export, not an app): @runnel/client + indexeddb ${full.gzip} B (min ${full.min} B); @runnel/client ${core.gzip} B; bench page (createClient+subscribe+indexedDb${profile ? ', unminified for the profile' : ''}) ${benchPage} B; the per-app budgets (15,000 / 10,000 / 10,000 / 4,000 B) are measured by client-sdk/src/bundle-size.test.ts`);
  console.log(JSON.stringify({
    bench: 'client', records: RECORDS, partitions: PARTITIONS, batchRecords: BATCH_RECORDS, creditWindowBytes: CREDIT_BYTES ?? null, valueBytes: VALUE_BYTES, catchUpRecordsPerSec: recordsPerSec, catchUpMs: Math.round(result.ms),
    catchUpValueMBPerSec: mbPerSec, rawCeilingRecordsPerSec: ceiling, rawCeilingBeforeRecordsPerSec: rawBefore.recordsPerSec, rawCeilingAfterRecordsPerSec: rawAfter.recordsPerSec,
    rawCeilingMBPerSec: Math.max(rawBefore.mbPerSec, rawAfter.mbPerSec), rawFrameBytes: raw.frameBytes, catchUpToCeilingRatio: Number(ratio.toFixed(3)),
    maxCreditWindowBytes: MAX_CREDIT_BYTES ?? null, loadAverage1m: Number(load[0]), bundleMinGzipBytes: full.gzip, bundleMinBytes: full.min, bundleCoreMinGzipBytes: core.gzip, benchPageMinGzipBytes: benchPage, chromium: browser.version(),
  }));
} finally {
  raw.close();
  await browser.close().catch(() => {});
  await pages.close();
  await broker.stop();
}
