/**
 * Size budget (issue 5): the browser bundle of `@runnel/client` plus its
 * IndexedDB storage, minified by esbuild with zod external, gzipped, must
 * stay ≤ 10 KB (10240 bytes). Prints the figure and the largest inputs; also
 * proves the browser entry imports no Node built-in.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { gzipSync } from 'node:zlib';
import { build } from 'esbuild';

const BUDGET_BYTES = 10 * 1024;
const here = new URL('.', import.meta.url).pathname;

test('browser bundle (index + indexeddb, min+gzip, zod external) fits the 10 KB budget', async () => {
  const result = await build({
    stdin: { contents: "export * from './index.ts';\nexport * from './indexeddb.ts';", resolveDir: here, loader: 'ts' },
    bundle: true, minify: true, format: 'esm', platform: 'browser', write: false, metafile: true, external: ['zod'], logLevel: 'silent',
  });
  const bytes = result.outputFiles[0].contents;
  const gzipped = gzipSync(bytes, { level: 9 }).length;
  const inputs = Object.entries(Object.values(result.metafile.outputs)[0].inputs)
    .sort((a, b) => b[1].bytesInOutput - a[1].bytesInOutput).slice(0, 8)
    .map(([name, x]) => `${name.replace(/^.*client-sdk\/src\//, '')} ${x.bytesInOutput}`);
  console.log(`bundle: ${bytes.length} bytes minified, ${gzipped} bytes min+gzip (budget ${BUDGET_BYTES}); largest: ${inputs.join(', ')}`);
  assert.ok(!Object.keys(result.metafile.inputs).some((i) => i.startsWith('node:')), 'no node: imports in the browser bundle');
  assert.ok(gzipped <= BUDGET_BYTES, `browser bundle is ${gzipped} bytes min+gzip, over the ${BUDGET_BYTES} byte budget`);
});
