/**
 * Test pages: TypeScript entries bundled for the browser with esbuild
 * (resolving the workspace packages, e.g. `@runnel/client`,
 * `@runnel/worker`) and served with a tiny static HTTP server on
 * 127.0.0.1 (a secure context, so IndexedDB and SharedWorker behave as in
 * production). The pages live on their own origin, independent of the
 * broker, so a page still loads while the broker is killed.
 */
import { build } from 'esbuild';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { extname, join, normalize } from 'node:path';

const root = new URL('../../..', import.meta.url).pathname;
const TYPES: Record<string, string> = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.map': 'application/json' };

export interface PageServerOptions {
  /** Bundles to build: served name (without `.js`) → entry path relative to the repo root. */
  bundles: Record<string, string>;
  /** HTML pages: served name (without `.html`) → bundle name it loads as a module script. */
  pages: Record<string, string>;
  /** Minify the bundles (benchmarks); default false (readable stack traces). */
  minify?: boolean;
}

/**
 * @example
 * const pages = await PageServer.start({ bundles: { sdk: 'test/e2e/pages/sdk-page.ts' }, pages: { sdk: 'sdk' } });
 * await page.goto(`${pages.url}/sdk.html`);
 */
export class PageServer {
  private constructor(private readonly server: Server, private readonly dir: string, readonly url: string) {}

  static async start(options: PageServerOptions): Promise<PageServer> {
    const dir = mkdtempSync(join(tmpdir(), 'runnel-e2e-pages-'));
    try {
      await bundle(options.bundles, dir, options.minify ?? false);
      for (const [name, bundleName] of Object.entries(options.pages)) {
        writeFileSync(join(dir, `${name}.html`), `<!doctype html>\n<meta charset="utf-8">\n<title>${name}</title>\n<script type="module" src="/${bundleName}.js"></script>\n<body></body>\n`);
      }
      const server = createServer((req, res) => {
        const path = normalize(decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname)).replace(/^(\.\.[/\\])+/, '');
        try {
          const body = readFileSync(join(dir, path));
          res.writeHead(200, { 'content-type': TYPES[extname(path)] ?? 'application/octet-stream', 'cache-control': 'no-store' });
          res.end(body);
        } catch {
          res.writeHead(404).end('not found');
        }
      });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      const { port } = server.address() as { port: number };
      return new PageServer(server, dir, `http://127.0.0.1:${port}`);
    } catch (error) {
      rmSync(dir, { recursive: true, force: true });
      throw error;
    }
  }

  /** The size in bytes of a built bundle. */
  bundleBytes(name: string): Buffer {
    return readFileSync(join(this.dir, `${name}.js`));
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise((resolve) => this.server.close(resolve));
    rmSync(this.dir, { recursive: true, force: true });
  }
}

async function bundle(bundles: Record<string, string>, outdir: string, minify: boolean): Promise<void> {
  const result = await build({
    absWorkingDir: root,
    entryPoints: Object.fromEntries(Object.entries(bundles).map(([name, entry]) => [name, join(root, entry)])),
    outdir,
    bundle: true,
    format: 'esm',
    platform: 'browser',
    conditions: ['runnel-source'], // the workspace packages' TypeScript sources, as in the tests' Node processes
    target: 'es2022',
    minify,
    sourcemap: minify ? false : 'inline',
    logLevel: 'silent',
  });
  if (result.errors.length > 0) throw new Error(`esbuild: ${result.errors.map((e) => e.text).join('\n')}`);
}
