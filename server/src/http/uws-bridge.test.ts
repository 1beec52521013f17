// The uWS ⇄ fetch bridge over real sockets: a uWS app on port 0, driven by fetch and raw TCP.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import uws, { assertNativeUws } from '../broker/uws.ts';
import { serveFetch } from './uws-bridge.ts';

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
