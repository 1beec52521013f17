/**
 * Static files (the demo build) at `/`: `GET /` → index.html, `GET /x/` →
 * x/index.html, other paths map to files under `staticDir`.
 * Invariant: only files inside `staticDir` are ever read: the decoded path is
 * resolved and must stay under the root (no `..`, no encoded slashes, no NUL);
 * anything else is 404. `/v1/*` is never served from disk.
 */
import { readFile, stat } from 'node:fs/promises';
import { extname, resolve, sep } from 'node:path';
import type { OpenAPIHono } from '@hono/zod-openapi';

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8', '.json': 'application/json', '.map': 'application/json', '.svg': 'image/svg+xml',
  '.png': 'image/png', '.jpg': 'image/jpeg', '.jpeg': 'image/jpeg', '.gif': 'image/gif', '.webp': 'image/webp',
  '.ico': 'image/x-icon', '.txt': 'text/plain; charset=utf-8', '.woff2': 'font/woff2', '.woff': 'font/woff',
  '.wasm': 'application/wasm', '.webmanifest': 'application/manifest+json',
};

/** Largest file served (bytes); the demo's assets are far smaller. */
const MAX_STATIC_FILE_BYTES = 32 * 1024 * 1024;

/** Maps a URL path to a file path under `root`, or null when it would leave it or is malformed. */
export function staticFilePath(root: string, urlPath: string): string | null {
  let decoded: string;
  try {
    decoded = decodeURIComponent(urlPath);
  } catch {
    return null;
  }
  if (decoded.includes('\0') || decoded.includes('\\') || /%2f|%5c/i.test(urlPath)) return null;
  const segments = decoded.split('/');
  if (segments.some((s) => s === '..')) return null;
  const base = resolve(root);
  const path = resolve(base, `.${decoded.endsWith('/') ? `${decoded}index.html` : decoded}`);
  return path === base || path.startsWith(base + sep) ? path : null;
}

async function fileResponse(path: string, method: string): Promise<Response | null> {
  const info = await stat(path).catch(() => null);
  if (info === null) return null;
  if (info.isDirectory()) return fileResponse(`${path}${sep}index.html`, method);
  if (!info.isFile() || info.size > MAX_STATIC_FILE_BYTES) return null;
  const headers = {
    'content-type': CONTENT_TYPES[extname(path).toLowerCase()] ?? 'application/octet-stream',
    'content-length': String(info.size),
    // index.html must be revalidated so a new demo build is picked up; hashed assets could be cached longer.
    'cache-control': path.endsWith('.html') ? 'no-cache' : 'public, max-age=300',
  };
  return new Response(method === 'HEAD' ? null : await readFile(path), { status: 200, headers });
}

export function registerStaticFiles(app: OpenAPIHono, staticDir: string): void {
  app.on(['GET', 'HEAD'], '/*', async (c, next) => {
    const urlPath = new URL(c.req.url).pathname;
    if (urlPath.startsWith('/v1/')) return next();
    const path = staticFilePath(staticDir, urlPath);
    const response = path === null ? null : await fileResponse(path, c.req.method);
    return response ?? next();
  });
}
