#!/usr/bin/env node
// Bundles the worker host: worker/src/shared-worker.ts → worker/dist/runnel-worker.js
// (ESM, minified, browser; zod is not needed inside the worker). Serve it and
// pass its URL as `connectShared({ workerUrl })`.
import { build } from 'esbuild';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('.', import.meta.url));
const result = await build({
  entryPoints: [`${root}src/shared-worker.ts`],
  outfile: `${root}dist/runnel-worker.js`,
  bundle: true, minify: true, sourcemap: true, format: 'esm', platform: 'browser', target: 'es2022',
  conditions: ['runnel-source'], // @runnel/client from its TypeScript sources, not a possibly stale dist/
  external: ['zod'], metafile: true, logLevel: 'warning',
});
const bytes = Object.entries(result.metafile.outputs).find(([name]) => name.endsWith('.js'))?.[1].bytes;
console.log(`worker/dist/runnel-worker.js: ${bytes} bytes`);
