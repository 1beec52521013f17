/**
 * The WHATWG `Request` the uWS bridge hands to the app, without the cost of building one per request.
 *
 * undici's `Request` constructor was a fifth of the broker's CPU per small HTTP request (profiled: a
 * Durable Streams append, 100 B): it parses the URL again, converts every init field through WebIDL,
 * creates its own AbortSignal and follows ours, and wraps the body in a ReadableStream. The app reads
 * `method`, `url`, `headers`, `signal` and the body as bytes, text or JSON; those are served here from
 * what the bridge already holds. Anything else (`body` as a stream, `blob`, `formData`, `clone`, the
 * rarely read fields) builds the real Request once, on first use, and forwards to it, so the object
 * behaves as a Request in every way (`instanceof Request` holds too).
 */

const decoder = new TextDecoder();

export class BridgedRequest {
  #body: Uint8Array<ArrayBuffer> | null;
  #used = false;
  #real: Request | undefined;

  constructor(readonly url: string, readonly method: string, readonly headers: Headers, readonly signal: AbortSignal, body: Uint8Array<ArrayBuffer> | null) {
    this.#body = body;
  }

  get bodyUsed(): boolean {
    return this.#real !== undefined ? this.#real.bodyUsed : this.#used;
  }

  /** The body's bytes, once (a second read is a TypeError, as on a Request). Empty when there is none. */
  #take(): Uint8Array<ArrayBuffer> {
    if (this.#real !== undefined) throw new TypeError('the body is read through the built Request');
    if (this.#used) throw new TypeError('Body is unusable: Body has already been read');
    this.#used = true;
    const body = this.#body ?? new Uint8Array(0);
    this.#body = null;
    return body;
  }

  async arrayBuffer(): Promise<ArrayBuffer> {
    if (this.#real !== undefined) return this.#real.arrayBuffer();
    const b = this.#take();
    // The bridge's body is a buffer of its own (copied out of uWS): handed over whole when it fills it.
    return b.byteOffset === 0 && b.byteLength === b.buffer.byteLength ? b.buffer : b.slice().buffer;
  }

  async bytes(): Promise<Uint8Array<ArrayBuffer>> {
    if (this.#real !== undefined) return new Uint8Array(await this.#real.arrayBuffer());
    return this.#take();
  }

  async text(): Promise<string> {
    if (this.#real !== undefined) return this.#real.text();
    return decoder.decode(this.#take());
  }

  async json(): Promise<unknown> {
    if (this.#real !== undefined) return this.#real.json();
    return JSON.parse(decoder.decode(this.#take())) as unknown;
  }

  clone(): Request {
    // As a Request's: a clone needs the body unread (the fast reads above do not leave it in a real Request).
    if (this.#used) throw new TypeError('Request.clone: Body has already been consumed.');
    return this.realRequest().clone();
  }

  /** The real Request, built on first use of anything not served above. */
  realRequest(): Request {
    if (this.#real === undefined) {
      const withBody = !this.#used && this.#body !== null && this.method !== 'GET' && this.method !== 'HEAD';
      this.#real = new Request(this.url, { method: this.method, headers: this.headers, body: withBody ? this.#body : null, signal: this.signal });
      this.#body = null;
    }
    return this.#real;
  }
}

// Every other member of Request.prototype forwards to the real Request (getters and methods alike).
for (const key of Reflect.ownKeys(Request.prototype)) {
  if (key === 'constructor' || Object.prototype.hasOwnProperty.call(BridgedRequest.prototype, key)) continue;
  const d = Object.getOwnPropertyDescriptor(Request.prototype, key)!;
  if (typeof d.value === 'function') {
    Object.defineProperty(BridgedRequest.prototype, key, { configurable: true, writable: true, value(this: BridgedRequest, ...args: unknown[]) { return (this.realRequest() as unknown as Record<PropertyKey, (...a: unknown[]) => unknown>)[key](...args); } });
  } else if (d.get !== undefined) {
    Object.defineProperty(BridgedRequest.prototype, key, { configurable: true, get(this: BridgedRequest) { return (this.realRequest() as unknown as Record<PropertyKey, unknown>)[key]; } });
  }
}
Object.setPrototypeOf(BridgedRequest.prototype, Request.prototype);

/** The bridge's request as the app's type. */
export function bridgedRequest(url: string, method: string, headers: Headers, signal: AbortSignal, body: Uint8Array<ArrayBuffer> | null): Request {
  return new BridgedRequest(url, method, headers, signal, body) as unknown as Request;
}
