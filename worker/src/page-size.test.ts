/**
 * Issue 13's budget for the page side of @runnel/worker: what a tab loads
 * before `connectShared` runs, as an app's bundler sees it (esbuild,
 * bundle + minify + code splitting, zod external, gzip level 9). The
 * in-page fallback and the leader host (each the whole client) are
 * `import()`ed only in the tab that runs them: they are separate chunks
 * and not counted; this test proves they stay out of the entry's static
 * graph and prints their sizes too.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { gzipSync } from 'node:zlib';
import { build } from 'esbuild';

const PAGE_SIDE_BUDGET_BYTES = 4 * 1024;
const here = new URL('.', import.meta.url).pathname;

test('page side of @runnel/worker (connectShared as an app imports it) is within 4 KB min+gzip', async () => {
  const app = `import { connectShared } from '@runnel/worker';
const runnel = await connectShared({ workerUrl: '/runnel-worker.js', urls: ['wss://example.test/v1/ws'] });
await runnel.subscribe('t', (r) => console.log(r.value));
await runnel.send('t', { a: 1 });`;
  const result = await build({
    stdin: { contents: app, resolveDir: here, loader: 'ts', sourcefile: 'app.ts' },
    bundle: true, minify: true, splitting: true, format: 'esm', platform: 'browser', outdir: '/out', write: false,
    metafile: true, external: ['zod'], conditions: ['runnel-source'], logLevel: 'silent',
  });
  // NB: outputFiles carry absolute paths, the metafile paths relative to the working directory: match by file name.
  const gz = new Map(result.outputFiles.map((f) => [f.path.split('/').pop()!, gzipSync(f.contents, { level: 9 }).length]));
  const outputs = result.metafile.outputs;
  const sizeOf = (name: string): number => gz.get(name.split('/').pop()!)!;
  /** A chunk and every chunk it imports statically: what loads before its code runs. */
  const closure = (name: string, into = new Set<string>()): Set<string> => {
    if (into.has(name)) return into;
    into.add(name);
    for (const i of outputs[name].imports) if (i.kind === 'import-statement') closure(i.path, into);
    return into;
  };
  const bytes = (names: Set<string>): number => [...names].reduce((sum, n) => sum + sizeOf(n), 0);
  const modulesOf = (names: Set<string>): string[] => [...names].flatMap((n) => Object.keys(outputs[n].inputs));
  const chunkOf = (entry: RegExp): string => Object.entries(outputs).find(([, o]) => o.entryPoint && entry.test(o.entryPoint))![0];
  const initial = closure(chunkOf(/<stdin>|app\.ts/));
  const largest = [...initial].flatMap((n) => Object.entries(outputs[n].inputs)).sort((a, b) => b[1].bytesInOutput - a[1].bytesInOutput).slice(0, 6)
    .map(([name, x]) => `${name.replace(/^.*\/(src|node_modules)\//, '')} ${x.bytesInOutput}`);
  console.log(`page side, first chunk: ${bytes(initial)} bytes min+gzip; largest: ${largest.join(', ')}`);
  // Then each mode loads its own part: comlink for a SharedWorker/Worker, leader-link for a follower tab.
  const modes = { shared: closure(chunkOf(/comlink/), new Set(initial)), leader: closure(chunkOf(/leader-link\.ts$/), new Set(initial)) };
  for (const [mode, names] of Object.entries(modes)) console.log(`page side, mode '${mode}' in all: ${bytes(names)} bytes min+gzip`);
  for (const [label, host] of [['leader host', /leader-host\.ts$/], ['in-page host', /worker-api\.ts$/]] as const) {
    console.log(`${label}, loaded lazily by the tab that hosts the client: ${bytes(closure(chunkOf(host)))} bytes min+gzip`);
  }
  for (const [mode, names] of Object.entries({ initial, ...modes })) {
    const modules = modulesOf(names);
    assert.ok(!modules.some((i) => i.endsWith('client-sdk/src/client.ts')), `the client is not loaded by a tab before it hosts it (${mode})`);
    assert.ok(!modules.some((i) => i.endsWith('leader-host.ts')), `the leader host is loaded only by the tab elected (${mode})`);
    assert.ok(bytes(names) <= PAGE_SIDE_BUDGET_BYTES, `page side (${mode}) is ${bytes(names)} bytes min+gzip, over the ${PAGE_SIDE_BUDGET_BYTES} byte budget`);
  }
});
