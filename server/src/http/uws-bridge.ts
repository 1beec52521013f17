/**
 * Bridge from uWebSockets.js's HttpRequest/HttpResponse to a WHATWG
 * `fetch(Request) => Response` handler (the Hono app). uWS has no Hono adapter.
 *
 * Lifetimes (uWS rules, see the uWS examples `Backpressure.js`, `Upload.js`):
 * - `HttpRequest` is stack-allocated: method, URL and headers are copied
 *   synchronously before anything else.
 * - `onAborted` is registered before any async work; after an abort `res` is
 *   never touched again, the Request's AbortSignal fires and a streamed
 *   response body is cancelled (this is how SSE streams end).
 * - Body chunks handed to `onData` are neutered when the callback returns, so
 *   they are copied; past `maxBodyBytes` the request gets 413
 *   MESSAGE_TOO_LARGE and the connection closes (nothing more is buffered).
 * - Writes happen inside `res.cork`; streamed bodies honour backpressure:
 *   when `res.write` returns false the pump waits for `onWritable`.
 */
import { STATUS_CODES } from 'node:http';
import type { HttpRequest, HttpResponse, TemplatedApp } from 'uWebSockets.js';
import { RunnelError } from '@runnel/client/codec';
import { bridgedRequest } from './bridged-request.ts';
import { concatBytes } from '../bytes.ts';
import { sizedBodyOf } from './sized-body.ts';

/** What the bridge knows of the peer, handed to the app as its env (Hono `c.env`). */
export interface ConnectionInfo { remoteAddress: string }

export type FetchHandler = (request: Request, info: ConnectionInfo) => Response | Promise<Response>;

export interface ServeFetchOptions {
  /** Largest request body accepted; larger ones get 413 before being buffered. */
  maxBodyBytes: number;
  /** Called when `fetch` throws or rejects (the client gets a 500 JSON error). Default: console.error. */
  onError?: (error: unknown, request: Request | undefined) => void;
}

/** Headers uWS writes itself (or that cannot pass through a proxy hop). */
const HOP_HEADERS = new Set(['content-length', 'transfer-encoding', 'connection', 'keep-alive', 'set-cookie']);
/** WHATWG Request refuses a body for these methods; one sent anyway is read (bounded) and dropped. */
const BODYLESS_METHODS = new Set(['GET', 'HEAD']);
/** Methods a WHATWG Request refuses outright: 400, as the Request constructor would have made it. */
const FORBIDDEN_METHODS = new Set(['CONNECT', 'TRACE', 'TRACK']);

type State = 'reading' | 'dispatched' | 'done' | 'aborted';

/** One request/response exchange; owns the uWS response until it ends or aborts. */
class Exchange {
  state: State = 'reading';
  readonly controller = new AbortController();
  private writableWaiter: (() => void) | undefined;
  private bodyReader: ReadableStreamDefaultReader<Uint8Array> | undefined;

  constructor(readonly res: HttpResponse, readonly opts: ServeFetchOptions) {}

  get isAborted(): boolean {
    return this.state === 'aborted';
  }

  handleAborted(): void {
    this.state = 'aborted';
    const reason = new RunnelError('ABORTED', 'client closed the connection');
    this.controller.abort(reason);
    this.bodyReader?.cancel(reason).catch(() => {});
    this.wakeWriter();
  }

  private wakeWriter(): void {
    const waiter = this.writableWaiter;
    this.writableWaiter = undefined;
    waiter?.();
  }

  /** Ends with a JSON error body; used for 413 and failures before/around the handler. */
  endWithError(error: RunnelError, status: number, closeConnection = false): void {
    if (this.state === 'aborted' || this.state === 'done') return;
    this.state = 'done';
    const body = JSON.stringify(error.toJSON());
    this.res.cork(() => {
      this.res.writeStatus(statusLine(status)).writeHeader('content-type', 'application/json');
      this.res.end(body, closeConnection);
    });
  }

  private writeHead(response: Response): void {
    this.res.writeStatus(statusLine(response.status));
    response.headers.forEach((value, key) => {
      if (!HOP_HEADERS.has(key)) this.res.writeHeader(key, value);
    });
    for (const cookie of response.headers.getSetCookie()) this.res.writeHeader('set-cookie', cookie);
  }

  async respond(response: Response, method: string): Promise<void> {
    if (this.isAborted) {
      await response.body?.cancel().catch(() => {});
      return;
    }
    const sized = method === 'HEAD' ? undefined : sizedBodyOf(response);
    if (sized !== undefined && sized.length > 0) return this.pumpSized(response, sized.chunks, sized.length);
    if (response.body !== null && isStreamed(response)) return this.pump(response, response.body);
    const body = response.body === null || method === 'HEAD' ? null : new Uint8Array(await response.arrayBuffer());
    if (this.isAborted) return;
    this.state = 'done';
    this.res.cork(() => {
      this.writeHead(response);
      if (body === null) this.res.endWithoutBody(method === 'HEAD' ? Number(response.headers.get('content-length') ?? 0) : 0);
      else this.res.end(body);
    });
  }

  /**
   * Writes a body of views with its Content-Length (uWS `tryEnd`): what the socket does not take is not
   * buffered by uWS, so on backpressure the rest of the view is written again from the write offset once
   * the socket drains. No view is copied on this side.
   */
  private async pumpSized(response: Response, chunks: readonly Uint8Array[], total: number): Promise<void> {
    this.res.onWritable(() => {
      this.wakeWriter();
      return true;
    });
    let i = 0;
    let chunkStart = 0; // body offset of chunks[i]
    let headWritten = false;
    for (;;) {
      let finished = false;
      this.res.cork(() => {
        if (!headWritten) this.writeHead(response);
        headWritten = true;
        while (i < chunks.length) {
          const chunk = chunks[i];
          const from = this.res.getWriteOffset() - chunkStart;
          const [ok, done] = this.res.tryEnd(from === 0 ? chunk : chunk.subarray(from), total);
          if (done) { finished = true; return; }
          if (!ok) return;
          chunkStart += chunk.byteLength;
          i++;
        }
      });
      if (finished) { this.state = 'done'; return; }
      if (i === chunks.length) {
        // Cannot happen (the length is the views' sum): the head is out, so the only honest end is a cut.
        this.opts.onError?.(new Error(`sized body: ${total} bytes declared, ${chunkStart} written`), undefined);
        this.state = 'done';
        this.res.close();
        return;
      }
      await new Promise<void>((resolve) => (this.writableWaiter = resolve));
      if (this.isAborted) return;
    }
  }

  /** Streams a chunked body with backpressure; cancels the stream when the client goes away. */
  private async pump(response: Response, stream: ReadableStream<Uint8Array>): Promise<void> {
    const reader = stream.getReader();
    this.bodyReader = reader;
    this.res.onWritable(() => {
      this.wakeWriter();
      return true;
    });
    let headWritten = false;
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (this.isAborted) return;
        if (done) break;
        // NB: a zero-length chunked write would terminate the body in uWS; skip it.
        if (value === undefined || value.byteLength === 0) continue;
        let writable = true;
        this.res.cork(() => {
          if (!headWritten) this.writeHead(response);
          headWritten = true;
          writable = this.res.write(value);
        });
        if (!writable) await new Promise<void>((resolve) => (this.writableWaiter = resolve));
        if (this.isAborted) return;
      }
      this.state = 'done';
      this.res.cork(() => {
        if (!headWritten) this.writeHead(response);
        this.res.end();
      });
    } catch (error) {
      if (this.isAborted) return;
      this.opts.onError?.(error, undefined);
      this.state = 'done';
      // Headers may be out already: the only honest signal left is to cut the connection.
      this.res.close();
    } finally {
      reader.releaseLock();
    }
  }
}

function statusLine(status: number): string {
  return `${status} ${STATUS_CODES[status] ?? 'Unknown'}`;
}

/** A response is streamed (chunked, flushed as produced) when it has no length and is marked as a stream. */
function isStreamed(response: Response): boolean {
  if (response.headers.has('content-length')) return false;
  const type = response.headers.get('content-type') ?? '';
  return type.startsWith('text/event-stream') || response.headers.get('transfer-encoding') === 'chunked';
}

function requestUrl(host: string, path: string, query: string): string {
  const suffix = query === '' ? path : `${path}?${query}`;
  try {
    return new URL(`http://${host || 'localhost'}${suffix}`).href;
  } catch {
    return new URL(`http://localhost${suffix}`).href;
  }
}

/**
 * A declared body (content-length) over maxBodyBytes is read and thrown away up to this many bytes before the 413 goes out: a client still
 * uploading when the connection closes sees a reset ("fetch failed"), not the 413 (the Durable Streams conformance
 * suite's 10 MB append). Past it the connection is closed at once.
 */
const MAX_DRAINED_BODY_BYTES = 64 * 1024 * 1024;

function tooLarge(maxBodyBytes: number): RunnelError {
  return new RunnelError('MESSAGE_TOO_LARGE', `request body exceeds maxHttpBodyBytes (${maxBodyBytes})`);
}

function dispatch(ex: Exchange, fetch: FetchHandler, info: ConnectionInfo, method: string, url: string, headers: Headers, body: Uint8Array<ArrayBuffer> | null): void {
  ex.state = 'dispatched';
  if (FORBIDDEN_METHODS.has(method)) {
    ex.endWithError(new RunnelError('INVALID_REQUEST', `malformed request: method ${method} is not allowed`), 400, true);
    return;
  }
  // The URL is a parsed href and the headers are validated: nothing left for a Request constructor to refuse.
  const request = bridgedRequest(url, method, headers, ex.controller.signal, body);
  Promise.resolve()
    .then(() => fetch(request, info))
    .then((response) => ex.respond(response, method))
    .catch((error: unknown) => {
      (ex.opts.onError ?? defaultOnError)(error, request);
      ex.endWithError(new RunnelError('UNKNOWN_SERVER_ERROR'), 500);
    });
}

function defaultOnError(error: unknown): void {
  console.error('runnel http: unhandled error', error);
}

function handleRequest(res: HttpResponse, req: HttpRequest, fetch: FetchHandler, opts: ServeFetchOptions): void {
  // Copy everything out of the stack-allocated request first.
  const method = req.getCaseSensitiveMethod().toUpperCase();
  const headers = new Headers();
  const headerList: [string, string][] = [];
  req.forEach((key, value) => headerList.push([key, value]));
  const url = requestUrl(req.getHeader('host'), req.getUrl(), req.getQuery() ?? '');
  const info: ConnectionInfo = { remoteAddress: Buffer.from(res.getRemoteAddressAsText()).toString() };
  const ex = new Exchange(res, opts);
  res.onAborted(() => ex.handleAborted());

  for (const [key, value] of headerList) {
    try {
      headers.append(key, value);
    } catch {
      ex.endWithError(new RunnelError('INVALID_REQUEST', `malformed header '${key}'`), 400, true);
      return;
    }
  }
  const declared = headers.get('content-length');
  const declaredBytes = declared === null ? 0 : Number(declared);
  const hasBody = declaredBytes > 0 || headers.has('transfer-encoding');
  if (declaredBytes > opts.maxBodyBytes) {
    if (declaredBytes > MAX_DRAINED_BODY_BYTES) ex.endWithError(tooLarge(opts.maxBodyBytes), 413, true);
    else drainThen413(res, ex, opts.maxBodyBytes, 0);
    return;
  }
  if (!hasBody) {
    dispatch(ex, fetch, info, method, url, headers, null);
    return;
  }
  const chunks: Uint8Array<ArrayBuffer>[] = [];
  let total = 0;
  res.onData((chunk, isLast) => {
    if (ex.state !== 'reading') return;
    total += chunk.byteLength;
    if (total > opts.maxBodyBytes) {
      // NB: no declared length (chunked): no end to wait for, so cut at once.
      ex.endWithError(tooLarge(opts.maxBodyBytes), 413, true);
      return;
    }
    // NB: uWS neuters `chunk` when this callback returns: copy it.
    chunks.push(new Uint8Array(chunk.slice(0)));
    if (isLast) dispatch(ex, fetch, info, method, url, headers, BODYLESS_METHODS.has(method) ? null : concatBytes(chunks, total));
  });
}

/** Reads and drops a declared-too-large body, then answers 413 and closes. */
function drainThen413(res: HttpResponse, ex: Exchange, maxBodyBytes: number, drained: number): void {
  res.onData((chunk, isLast) => {
    if (ex.state !== 'reading') return;
    drained += chunk.byteLength;
    if (isLast || drained > MAX_DRAINED_BODY_BYTES) ex.endWithError(tooLarge(maxBodyBytes), 413, true);
  });
}

/**
 * Serves every HTTP request that no earlier uWS route took through `fetch`.
 * @example
 * const app = uws.App();
 * serveFetch(app, honoApp.fetch, { maxBodyBytes: limits.maxHttpBodyBytes });
 * app.listen(8080, () => {});
 */
export function serveFetch(app: TemplatedApp, fetch: FetchHandler, opts: ServeFetchOptions): void {
  app.any('/*', (res, req) => handleRequest(res, req, fetch, opts));
}
