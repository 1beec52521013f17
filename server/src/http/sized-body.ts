/**
 * A response whose body is a list of byte views (records read from the log), which the uWS bridge writes to
 * the socket as they are, with a Content-Length, instead of copying them into one buffer and that buffer
 * through a web stream again (a 1 MiB catch-up answer was built three times: GC was 29 % of the broker
 * serving eight catch-up readers). Whoever else reads the response (`app.request()` in tests, a middleware
 * that builds a new Response from it) sees an ordinary body made of the same views.
 */
import { concatBytes } from '../bytes.ts';

export interface SizedBody { readonly chunks: readonly Uint8Array[]; readonly length: number }

/** Views at least this large go to the socket as they are; runs of smaller ones are copied together first. */
const VIEW_MIN_BYTES = 16 * 1024;

/** The views to write: large ones as they are, runs of small ones copied together (one socket write per 100 B record would cost more than the copy). */
function coalesced(views: readonly Uint8Array[]): Uint8Array[] {
  const chunks: Uint8Array[] = [];
  let run: Uint8Array[] = [];
  let runBytes = 0;
  const endRun = () => {
    if (run.length > 0) chunks.push(concatBytes(run, runBytes));
    run = [];
    runBytes = 0;
  };
  for (const v of views) {
    if (v.byteLength >= VIEW_MIN_BYTES) {
      endRun();
      chunks.push(v);
    } else {
      run.push(v);
      runBytes += v.byteLength;
    }
  }
  endRun();
  return chunks;
}

/**
 * Keyed by the body stream, not the Response: middleware that adds a header after the handler (Hono's
 * `c.header`, CORS) builds a new Response around the same stream, which must still go out as views.
 */
const bodies = new WeakMap<ReadableStream<Uint8Array>, SizedBody>();

export function sizedResponse(views: readonly Uint8Array[], init: { status: number; headers: Headers }): Response {
  const chunks = coalesced(views);
  let length = 0;
  for (const c of chunks) length += c.byteLength;
  init.headers.set('content-length', String(length));
  let next = 0;
  const stream = new ReadableStream<Uint8Array>({
    pull(controller) {
      // Skips empty views: a zero-length chunk means nothing to a reader but costs a turn.
      while (next < chunks.length && chunks[next].byteLength === 0) next++;
      if (next === chunks.length) controller.close();
      else controller.enqueue(chunks[next++]);
    },
  }, { highWaterMark: 0 });
  const response = new Response(stream, init);
  bodies.set(stream, { chunks, length });
  return response;
}

/** The views of a response made by `sizedResponse` (or around its body), or undefined: any other, or its body already read. */
export function sizedBodyOf(response: Response): SizedBody | undefined {
  const body = response.body;
  return body === null || response.bodyUsed ? undefined : bodies.get(body);
}
