/**
 * Size budgets per entry point (issue 13), measured as a user's bundler
 * sees them: a small app source per entry (import, create, defineTopic with
 * a zod/mini schema, subscribe and/or send), bundled by esbuild (bundle +
 * minify + code splitting, browser ESM, zod external), gzip level 9. What
 * counts is what loads before the app runs: the entry chunk and every chunk
 * it imports statically (a lazily `import()`ed chunk, such as the memory
 * storage of a client given none, is printed but not counted). 1 KB = 1000
 * bytes here (stricter than 1024). Prints each entry's bytes and largest
 * modules, the cost of zod's two import forms, and proves the browser
 * entries import no Node built-in.
 *
 * Issue 13's budgets (`budget`) are NOT met yet by the three client entries
 * (docs/client.md "Entry points"): until they are, each of those entries is
 * held at its `guard` — today's size plus ~0.5–1 %, to be lowered, never raised —
 * and the distance to its budget is printed in every run. An entry that meets
 * its budget is held to the budget.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { gzipSync } from 'node:zlib';
import { build, type Metafile } from 'esbuild';

const KB = 1000;
const here = new URL('.', import.meta.url).pathname;
const topic = `const pageViews = defineTopic('page-views', z.object({ path: z.string(), ms: z.number() }));`;

/** App sources, each as its README example would write it, with its budget. */
const apps = {
  'full app (@runnel/client: createClient + IndexedDB + typed topic + subscribe + send)': {
    budget: 15 * KB,
    guard: 22_045, // 21,935 with #private members in the codec reader, streams, subscriptions; 22,118 with codes-only messages in browser builds (#verbose); 23,834 before
    source: `import { createClient, defineTopic } from '@runnel/client';
import { indexedDbStorage } from '@runnel/client/indexeddb';
import * as z from 'zod/mini';
${topic}
const client = createClient({ urls: ['wss://runnel.example/v1/ws'], storage: indexedDbStorage() });
client.subscribe(pageViews, (rec) => console.log(rec.value.path), { consumerId: 'dashboard' });
await client.producer.send(pageViews, { path: location.pathname, ms: 1 });`,
  },
  'consumer only (@runnel/client/consumer + IndexedDB offsets: indexedDbConsumerStorage)': {
    budget: 10 * KB,
    guard: 15_310, // 15,232 with #private members; 15,397 with codes-only messages in browser builds (#verbose); 16,629 before
    source: `import { createConsumer, defineTopic } from '@runnel/client/consumer';
import { indexedDbConsumerStorage } from '@runnel/client/indexeddb';
import * as z from 'zod/mini';
${topic}
const consumer = createConsumer({ urls: ['wss://runnel.example/v1/ws'], storage: indexedDbConsumerStorage() });
consumer.subscribe(pageViews, (rec) => console.log(rec.value.path), { consumerId: 'dashboard' });`,
  },
  'producer only (@runnel/client/producer + IndexedDB outbox: indexedDbProducerStorage)': {
    budget: 10 * KB,
    guard: 15_600, // 15,526 with #private members; 15,629 with codes-only messages in browser builds (#verbose); 16,698 before
    source: `import { createProducer, defineTopic } from '@runnel/client/producer';
import { indexedDbProducerStorage } from '@runnel/client/indexeddb';
import * as z from 'zod/mini';
${topic}
const producer = createProducer({ urls: ['wss://runnel.example/v1/ws'], storage: indexedDbProducerStorage() });
await producer.send(pageViews, { path: location.pathname, ms: 1 });`,
  },
  'page side of @runnel/worker (connectShared)': {
    budget: 4 * KB,
    guard: 4 * KB,
    source: `import { connectShared } from '@runnel/worker';
const runnel = await connectShared({ workerUrl: '/runnel-worker.js', urls: ['wss://runnel.example/v1/ws'] });
await runnel.subscribe('page-views', (rec) => console.log(rec.value));
await runnel.send('page-views', { path: location.pathname });`,
  },
} as const;

interface Measured { bytes: number; lazyBytes: number; largest: string[]; inputs: string[]; moduleBytes: (pattern: RegExp) => number }

/** Bundles `source` as an app would and returns the min+gzip bytes of what loads before it runs. */
async function measure(source: string, external: string[] = ['zod', 'zod/*']): Promise<Measured> {
  const result = await build({
    stdin: { contents: source, resolveDir: here, loader: 'ts', sourcefile: 'app.ts' },
    bundle: true, minify: true, splitting: true, format: 'esm', platform: 'browser', outdir: '/out', write: false,
    metafile: true, external, conditions: ['runnel-source'], logLevel: 'silent',
  });
  // NB: outputFiles carry absolute paths, the metafile paths relative to the working directory: match by file name.
  const gz = new Map(result.outputFiles.map((f) => [f.path.split('/').pop()!, gzipSync(f.contents, { level: 9 }).length]));
  const outputs: Metafile['outputs'] = result.metafile.outputs;
  const sizeOf = (name: string): number => gz.get(name.split('/').pop()!)!;
  const closure = (name: string, into = new Set<string>()): Set<string> => {
    if (into.has(name)) return into;
    into.add(name);
    for (const i of outputs[name].imports) if (i.kind === 'import-statement' && !i.external) closure(i.path, into);
    return into;
  };
  // NB: every import()ed chunk is an entryPoint in the metafile too: the app's chunk is the one from its sourcefile.
  const entry = Object.entries(outputs).find(([, o]) => o.entryPoint?.endsWith('/app.ts'))![0];
  const initial = closure(entry);
  const bytes = [...initial].reduce((sum, n) => sum + sizeOf(n), 0);
  const all = Object.keys(outputs).filter((n) => n.endsWith('.js')).reduce((sum, n) => sum + sizeOf(n), 0);
  const modules = [...initial].flatMap((n) => Object.entries(outputs[n].inputs));
  const largest = modules.sort((a, b) => b[1].bytesInOutput - a[1].bytesInOutput).slice(0, 8)
    .map(([name, x]) => `${name.replace(/^.*\/(src|node_modules)\//, '')} ${x.bytesInOutput}`);
  const moduleBytes = (pattern: RegExp): number => modules.filter(([name]) => pattern.test(name)).reduce((sum, [, x]) => sum + x.bytesInOutput, 0);
  return { bytes, lazyBytes: all - bytes, largest, inputs: Object.keys(result.metafile.inputs), moduleBytes };
}

for (const [label, { budget, guard, source }] of Object.entries(apps)) {
  test(`${label}: within ${Math.max(budget, guard)} bytes min+gzip (budget ${budget})`, async () => {
    const m = await measure(source);
    console.log(`${label}: ${m.bytes} bytes min+gzip (budget ${budget}; ${m.lazyBytes} more in lazy chunks); largest minified: ${m.largest.join(', ')}`);
    assert.ok(!m.inputs.some((i) => i.startsWith('node:')), `no node: imports in ${label}`);
    console.log(`${label}: issue 13 budget ${budget} bytes ${m.bytes <= budget ? 'met' : `MISSED by ${m.bytes - budget} bytes`}`);
    const limit = Math.max(budget, guard);
    assert.ok(m.bytes <= limit, `${label} is ${m.bytes} bytes min+gzip, over its ${limit} byte ${limit === budget ? 'budget' : 'guard'} by ${m.bytes - limit}`);
  });
}

test('a half bundles without the other half', async () => {
  const consumer = await measure(apps['consumer only (@runnel/client/consumer + IndexedDB offsets: indexedDbConsumerStorage)'].source);
  const producer = await measure(apps['producer only (@runnel/client/producer + IndexedDB outbox: indexedDbProducerStorage)'].source);
  // NB: the consumer shares one helper with the outbox (tpKey, a few bytes); the classes stay out.
  assert.equal(consumer.moduleBytes(/client-sdk\/src\/producer\.ts$/), 0, 'the consumer entry bundles no producer');
  assert.ok(consumer.moduleBytes(/client-sdk\/src\/outbox\.ts$/) < 100, 'the consumer entry bundles no outbox');
  assert.equal(producer.moduleBytes(/client-sdk\/src\/(consumer|partition-stream|consumer-record)\.ts$/), 0, 'the producer entry bundles no consumer');
  assert.equal(consumer.moduleBytes(/client-sdk\/src\/indexeddb-outbox\.ts$/), 0, 'indexedDbConsumerStorage bundles no IndexedDB outbox');
  assert.equal(producer.moduleBytes(/client-sdk\/src\/indexeddb-offsets\.ts$/), 0, 'indexedDbProducerStorage bundles no IndexedDB offset store');
  // A client given its storage loads no memory storage before it runs (only a client given none imports it, lazily).
  for (const m of [consumer, producer]) assert.equal(m.moduleBytes(/client-sdk\/src\/memory-storage\.ts$/), 0, 'memory storage stays out of the entry chunk');
});

test('what a zod schema costs in the full app, by import form (zod bundled)', async () => {
  const full = apps['full app (@runnel/client: createClient + IndexedDB + typed topic + subscribe + send)'].source;
  const base = (await measure(full)).bytes;
  const mini = (await measure(full, [])).bytes - base;
  const classic = (await measure(full.replace("'zod/mini'", "'zod'"), [])).bytes - base;
  console.log(`zod in the full app: import * as z from 'zod/mini' +${mini} bytes min+gzip; import { z } from 'zod' +${classic} bytes`);
  assert.ok(mini < classic, 'zod/mini tree-shakes to less than the classic import');
});
