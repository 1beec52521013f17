/** Builds the HTTP app over a MemoryBroker for in-process route tests (`app.request()`). */
import { validateLimits, type Limits } from '../../limits.ts';
import { createMetrics } from '../../metrics.ts';
import { createHttpApp, type HttpAppDeps } from '../app.ts';
import { MemoryBroker } from './memory-broker.ts';

export function appFixture(opts: { limits?: Partial<Limits>; ready?: boolean; deps?: Partial<HttpAppDeps> } = {}) {
  const broker = new MemoryBroker();
  const metrics = createMetrics();
  const limits = validateLimits(opts.limits ?? {});
  const errors: unknown[] = [];
  const app = createHttpApp({ broker, metrics, limits, isReady: () => opts.ready ?? true, logError: (e) => errors.push(e), ...opts.deps });
  const json = (path: string, body: unknown, method = 'POST') =>
    app.request(path, { method, headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { app, broker, metrics, limits, errors, json };
}

/** Asserts a JSON error body and returns its code. */
export async function errorCode(res: Response): Promise<string> {
  const body = (await res.json()) as { error?: { code?: unknown; message?: unknown } };
  if (typeof body.error?.code !== 'string' || typeof body.error?.message !== 'string') throw new Error(`not an error body: ${JSON.stringify(body)}`);
  return body.error.code;
}
