// The uWS ⇄ fetch bridge over real sockets: a uWS app on port 0, driven by fetch and raw TCP.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import uws, { assertNativeUws } from '../broker/uws.ts';
import { serveFetch } from './uws-bridge.ts';
import { sizedBodyOf, sizedResponse } from './sized-body.ts';

let sizedSeen = false;

const MAX_BODY = 64 * 1024;
let port = 0;
let listenSocket: unknown;
let released: Promise<string>;
let releaseStream: (why: string) => void;

function resetRelease(): void {
  released = new Promise((resolve) => (releaseStream = resolve));
}

/** A test handler: a few routes that exercise the bridge's paths. */
async function handler(request: Request): Promise<Response> {
  const url = new URL(request.url);
  switch (url.pathname) {
    case '/echo': {
      const body = request.body === null ? '' : await request.text();
      return Response.json({ method: request.method, query: url.search, header: request.headers.get('x-test'), bodyLength: body.length, body }, { status: 201, headers: { 'x-reply': 'yes' } });
    }
    case '/throws':
      throw new Error('boom');
    case '/sized': {
      // Views at odd offsets of one buffer, sizes from 0 B to 4 MiB (more than loopback socket buffers): the bridge must write each from where it lies.
      const chunks = sizedChunks();
      return sizedResponse(chunks, { status: 200, headers: new Headers({ 'content-type': 'application/octet-stream', 'x-chunks': String(chunks.length) }) });
    }
    case '/sized-rewrapped': {
      // As middleware does when it adds a header after the handler: a new Response around the same body.
      const inner = sizedResponse(sizedChunks(), { status: 200, headers: new Headers({ 'content-type': 'application/octet-stream' }) });
      const outer = new Response(inner.body, inner);
      outer.headers.set('vary', 'Origin');
      sizedSeen = sizedBodyOf(outer) !== undefined;
      return outer;
    }
    case '/request': {
      // What the app sees of the request: a Request in every way, body readable once.
      const first = await request.text();
      const second = await request.text().then(() => 'read twice', (e: Error) => e.name);
      return Response.json({
        isRequest: request instanceof Request, method: request.method, url: request.url, header: request.headers.get('x-test'),
        signal: request.signal instanceof AbortSignal && !request.signal.aborted, first, second, bodyUsed: request.bodyUsed,
        mode: request.mode, redirect: request.redirect,
      });
    }
    case '/clone': {
      // A clone taken before the body is read: both read it (through the real Request built for the clone).
      const copy = request.clone();
      return Response.json({ copy: await copy.text(), original: await request.text() });
    }
    case '/json':
      return Response.json({ got: await request.json(), clone: (() => { try { return request.clone().url; } catch (e) { return (e as Error).name; } })() });
    case '/stream': {
      const chunks = Number(url.searchParams.get('chunks'));
      const size = Number(url.searchParams.get('size'));
      let sent = 0;
      return new Response(new ReadableStream<Uint8Array>({
        pull(controller) {
          if (sent === chunks) return controller.close();
          controller.enqueue(new Uint8Array(size).fill(97 + (sent % 26)));
          sent++;
        },
      }, { highWaterMark: 0 }), { headers: { 'content-type': 'application/octet-stream', 'transfer-encoding': 'chunked' } });
    }
    case '/sse': {
      let timer: NodeJS.Timeout | undefined;
      request.signal.addEventListener('abort', () => clearInterval(timer));
      let n = 0;
      const encoder = new TextEncoder();
      return new Response(new ReadableStream<Uint8Array>({
        start(controller) {
          controller.enqueue(encoder.encode(': hello\n\n'));
          timer = setInterval(() => {
            controller.enqueue(encoder.encode(`id: ${n}\ndata: ${n++}\n\n`));
          }, 5);
        },
        cancel(reason) {
          clearInterval(timer);
          releaseStream(`cancelled: ${reason instanceof Error ? reason.message : String(reason)}`);
        },
      }), { headers: { 'content-type': 'text/event-stream' } });
    }
    default:
      return new Response('not found', { status: 404 });
  }
}

/** The /sized route's views: deterministic bytes, at odd offsets of one backing buffer. */
function sizedChunks(): Uint8Array[] {
  const sizes = [0, 1, 100, 16 * 1024, 0, 256 * 1024, 7, 200 * 1024, 64 * 1024 + 3, 1, 512 * 1024, 3 * 1024 * 1024, 5, 4 * 1024 * 1024 + 11];
  const backing = new Uint8Array(sizes.reduce((a, b) => a + b + 5, 0));
  for (let i = 0; i < backing.length; i++) backing[i] = (i * 31 + (i >> 9)) & 0xff;
  const chunks: Uint8Array[] = [];
  let at = 3;
  for (const n of sizes) { chunks.push(backing.subarray(at, at + n)); at += n + 5; }
  return chunks;
}

before(async () => {
  assertNativeUws();
  const app = uws.App();
  serveFetch(app, handler, { maxBodyBytes: MAX_BODY, onError: () => {} });
  await new Promise<void>((resolve, reject) => app.listen('127.0.0.1', 0, (socket) => {
    if (!socket) return reject(new Error('listen failed'));
    listenSocket = socket;
    port = uws.us_socket_local_port(socket as never);
    resolve();
  }));
});

after(() => {
  if (listenSocket) uws.us_listen_socket_close(listenSocket as never);
});

test('JSON request and response: method, query, headers, body, status', async () => {
  const r = await fetch(`http://127.0.0.1:${port}/echo?a=1&b=%20`, { method: 'POST', headers: { 'x-test': 'hi' }, body: 'payload' });
  assert.equal(r.status, 201);
  assert.equal(r.headers.get('x-reply'), 'yes');
  assert.match(r.headers.get('content-type') ?? '', /application\/json/);
  assert.deepEqual(await r.json(), { method: 'POST', query: '?a=1&b=%20', header: 'hi', bodyLength: 7, body: 'payload' });
  const g = await fetch(`http://127.0.0.1:${port}/echo`);
  assert.deepEqual(await g.json(), { method: 'GET', query: '', header: null, bodyLength: 0, body: '' });
});

test('a body at the limit passes; a streamed (chunked) body reassembles', async () => {
  const r = await fetch(`http://127.0.0.1:${port}/echo`, { method: 'POST', body: 'x'.repeat(MAX_BODY) });
  assert.equal((await r.json()).bodyLength, MAX_BODY);
  const parts = ['abc', 'def', 'ghi'];
  const body = new ReadableStream({ pull(c) { const p = parts.shift(); if (p === undefined) c.close(); else c.enqueue(new TextEncoder().encode(p)); } });
  const s = await fetch(`http://127.0.0.1:${port}/echo`, { method: 'POST', body, duplex: 'half' } as RequestInit);
  assert.equal((await s.json()).body, 'abcdefghi');
});

test('declared oversize body: 413 MESSAGE_TOO_LARGE JSON error', async () => {
  const r = await fetch(`http://127.0.0.1:${port}/echo`, { method: 'POST', body: 'x'.repeat(MAX_BODY + 1) }).catch((e: Error) => e);
  assert.ok(!(r instanceof Error), `fetch failed: ${String(r)}`);
  assert.equal(r.status, 413);
  assert.equal((await r.json()).error.code, 'MESSAGE_TOO_LARGE');
});

test('a declared body far over the limit (10 MB) is read to its end and answered 413, not reset mid-upload', async () => {
  for (let i = 0; i < 5; i++) {
    const r = await fetch(`http://127.0.0.1:${port}/echo`, { method: 'POST', body: new Uint8Array(10 * 1024 * 1024) }).catch((e: Error) => e);
    assert.ok(!(r instanceof Error), `fetch failed (attempt ${i + 1}): ${String(r)} ${String((r as Error).cause ?? '')}`);
    assert.equal(r.status, 413);
    assert.equal((await r.json()).error.code, 'MESSAGE_TOO_LARGE');
  }
});

test('chunked oversize body is cut at the limit with 413 and the connection closed', async () => {
  const reply = await new Promise<string>((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let text = '';
    socket.on('data', (d) => (text += d.toString('latin1')));
    socket.on('close', () => resolve(text));
    socket.on('error', () => resolve(text));
    socket.setTimeout(5000, () => reject(new Error('server neither answered nor closed')));
    socket.write('POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n');
    const chunk = 'y'.repeat(16 * 1024);
    for (let i = 0; i < 6; i++) socket.write(`${chunk.length.toString(16)}\r\n${chunk}\r\n`);
  });
  assert.match(reply, /^HTTP\/1\.1 413 /);
  assert.match(reply, /"code":"MESSAGE_TOO_LARGE"/);
});

test('handler errors become 500 UNKNOWN_SERVER_ERROR and the server keeps serving', async () => {
  const r = await fetch(`http://127.0.0.1:${port}/throws`);
  assert.equal(r.status, 500);
  assert.equal((await r.json()).error.code, 'UNKNOWN_SERVER_ERROR');
  assert.equal((await fetch(`http://127.0.0.1:${port}/nope`)).status, 404);
});

test('streamed body larger than socket buffers arrives complete and in order (backpressure)', async () => {
  const chunks = 200;
  const size = 64 * 1024;
  const r = await fetch(`http://127.0.0.1:${port}/stream?chunks=${chunks}&size=${size}`);
  const reader = r.body!.getReader();
  let total = 0;
  let expectedChar = 97;
  let inChunk = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    for (const byte of value) {
      assert.equal(byte, expectedChar, `byte ${total}`);
      total++;
      if (++inChunk === size) {
        inChunk = 0;
        expectedChar = 97 + ((expectedChar - 97 + 1) % 26);
      }
    }
    // A slow reader: lets uWS hit backpressure before we drain more.
    if (total % (1024 * 1024) < value.length) await new Promise((res) => setTimeout(res, 2));
  }
  assert.equal(total, chunks * size);
});

test('client abort mid-stream cancels the response stream and the server keeps serving', async () => {
  resetRelease();
  const controller = new AbortController();
  const r = await fetch(`http://127.0.0.1:${port}/sse`, { signal: controller.signal });
  assert.equal(r.headers.get('content-type'), 'text/event-stream');
  const reader = r.body!.getReader();
  let text = '';
  while (!text.includes('id: 2')) text += new TextDecoder().decode((await reader.read()).value);
  assert.match(text, /^: hello\n\nid: 0\ndata: 0\n\n/);
  controller.abort();
  const why = await Promise.race([released, new Promise<string>((res) => setTimeout(() => res('not released'), 5000))]);
  assert.match(why, /^cancelled: client closed the connection/);
  const r2 = await fetch(`http://127.0.0.1:${port}/echo`, { method: 'POST', body: 'still here' });
  assert.equal((await r2.json()).body, 'still here');
});

test('a body of views (sizedResponse) arrives byte for byte with its Content-Length, through a slow reader (backpressure)', async () => {
  const expected = Buffer.concat(sizedChunks());
  for (const slow of [false, true]) {
    const r = await fetch(`http://127.0.0.1:${port}/sized`);
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('content-length'), String(expected.length));
    assert.equal(r.headers.get('x-chunks'), '14');
    const reader = r.body!.getReader();
    const got: Uint8Array[] = [];
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      got.push(value);
      if (slow) await new Promise((res) => setTimeout(res, 3));
    }
    assert.ok(Buffer.concat(got).equals(expected), `body differs (slow reader: ${slow})`);
  }
  const wrapped = await fetch(`http://127.0.0.1:${port}/sized-rewrapped`);
  assert.equal(wrapped.headers.get('vary'), 'Origin');
  assert.ok(Buffer.from(await wrapped.arrayBuffer()).equals(expected));
  assert.ok(sizedSeen, 'a Response built around a sized body is still sent as views');
  const head = await fetch(`http://127.0.0.1:${port}/sized`, { method: 'HEAD' });
  assert.equal(head.status, 200);
  assert.equal(await head.text(), '');
  // The same response read in process (no bridge): an ordinary body of the same bytes.
  const inProcess = await handler(new Request('http://x/sized'));
  assert.ok(Buffer.from(await inProcess.arrayBuffer()).equals(expected));
});

test('a client gone mid-way through a body of views leaves the server serving', async () => {
  const controller = new AbortController();
  const r = await fetch(`http://127.0.0.1:${port}/sized`, { signal: controller.signal });
  await r.body!.getReader().read();
  controller.abort();
  const again = await fetch(`http://127.0.0.1:${port}/sized`);
  assert.equal((await again.arrayBuffer()).byteLength, Buffer.concat(sizedChunks()).length);
});

test('the app gets a Request: fields, signal, body once, and what only a real Request has (mode, clone)', async () => {
  const r = await fetch(`http://127.0.0.1:${port}/request?q=1`, { method: 'PUT', headers: { 'x-test': 'yes' }, body: 'héllo' });
  assert.deepEqual(await r.json(), {
    isRequest: true, method: 'PUT', url: `http://127.0.0.1:${port}/request?q=1`, header: 'yes', signal: true,
    first: 'héllo', second: 'TypeError', bodyUsed: true, mode: 'cors', redirect: 'follow',
  });
  const c = await fetch(`http://127.0.0.1:${port}/clone`, { method: 'POST', body: 'twice' });
  assert.deepEqual(await c.json(), { copy: 'twice', original: 'twice' });
  const j = await fetch(`http://127.0.0.1:${port}/json`, { method: 'POST', body: '{"a":[1,2]}' });
  // After a fast-path read, a clone built from the used body cannot read it again.
  assert.deepEqual(await j.json(), { got: { a: [1, 2] }, clone: 'TypeError' });
  const bad = await fetch(`http://127.0.0.1:${port}/json`, { method: 'POST', body: '{not json' });
  assert.equal(bad.status, 500);
});
