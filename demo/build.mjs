#!/usr/bin/env node
// Builds the demo into demo/dist (served at / by `runnel start`):
//   dist/index.html                 the live dashboard
//   dist/shop/*.html                the storefront, one static page per product (from product.html)
//   dist/assets/{dashboard,shop}.js the page bundles (esbuild, ESM, minified)
//   dist/assets/runnel-worker.js    the SharedWorker host of @runnel/worker
//   dist/assets/uPlot.min.css       uPlot's stylesheet
// Run by `npm run build --workspace demo` (and so by `npm start`). Fast: one
// esbuild call, no type checking (`npx tsc -p tsconfig.json` does that).
import { build } from 'esbuild';
import { cpSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const demoDir = dirname(fileURLToPath(import.meta.url));
const rootDir = join(demoDir, '..');
const outDir = join(demoDir, 'dist');
const publicDir = join(demoDir, 'public');
const require = createRequire(import.meta.url);
const startedMs = performance.now();

/** The SharedWorker script: @runnel/worker's worker entry, bundled here so the demo never depends on a stale worker/dist. */
const WORKER_ENTRY = join(rootDir, 'worker/src/shared-worker.ts');

rmSync(outDir, { recursive: true, force: true });
mkdirSync(join(outDir, 'assets'), { recursive: true });

// 1. Static files, except the product page template (expanded below).
cpSync(publicDir, outDir, { recursive: true, filter: (src) => !src.endsWith(join('shop', 'product.html')) });
cpSync(join(dirname(require.resolve('uplot')), 'uPlot.min.css'), join(outDir, 'assets', 'uPlot.min.css'));

// 2. One static page per product.
const catalog = JSON.parse(readFileSync(join(demoDir, 'src/shop/catalog.json'), 'utf8'));
const template = readFileSync(join(publicDir, 'shop', 'product.html'), 'utf8');
const escapeHtml = (text) => String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
for (const product of catalog.products) {
  const fields = { ...product, price: `$${(product.priceCents / 100).toFixed(2)}` };
  const page = template.replace(/\{\{(\w+)\}\}/g, (_, name) => escapeHtml(fields[name] ?? ''));
  writeFileSync(join(outDir, 'shop', `product-${product.id}.html`), page);
}

// 3. Bundles.
const entryPoints = {
  dashboard: join(demoDir, 'src/dashboard/main.ts'),
  shop: join(demoDir, 'src/shop/main.ts'),
};
if (existsSync(WORKER_ENTRY)) entryPoints['runnel-worker'] = WORKER_ENTRY;

const result = await build({
  entryPoints,
  outdir: join(outDir, 'assets'),
  bundle: true,
  format: 'esm',
  platform: 'browser',
  conditions: ['runnel-source'], // bundle the workspace packages' TypeScript sources, not a possibly stale dist/
  target: 'es2022',
  minify: true,
  sourcemap: true,
  legalComments: 'none',
  logLevel: 'warning',
  metafile: true,
});

// 4. Size report.
const sizes = Object.entries(result.metafile.outputs)
  .filter(([file]) => file.endsWith('.js'))
  .map(([file, info]) => `${relative(outDir, resolve(file))} ${(info.bytes / 1024).toFixed(1)} KB`);
const pages = readdirSync(join(outDir, 'shop')).filter((f) => f.endsWith('.html')).length + 1;
const totalBytes = readdirSync(join(outDir, 'assets')).reduce((sum, f) => sum + statSync(join(outDir, 'assets', f)).size, 0);
console.log(`demo build: ${pages} pages, ${sizes.join(', ')} (assets ${(totalBytes / 1024).toFixed(0)} KB) in ${Math.round(performance.now() - startedMs)} ms → ${relative(rootDir, outDir)}`);
