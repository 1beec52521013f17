/**
 * The fault proxy over real sockets, against a real echo server: pass
 * forwards; blackhole is silence both ways without a close (existing and new
 * connections) and heal delivers what was held; reset refuses with RST until
 * healed; a target that goes away closes the client.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { once } from 'node:events';
import { FaultProxy } from './fault-proxy.ts';

/** A server that echoes every byte, and counts the connections it got. */
async function echoServer(): Promise<{ server: Server; port: number; connections: Set<Socket>; close(): Promise<void> }> {
  const connections = new Set<Socket>();
  const server = createServer((socket) => {
    connections.add(socket);
    socket.on('error', () => {});
    socket.on('close', () => connections.delete(socket));
    socket.pipe(socket);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    server, port: (server.address() as { port: number }).port, connections,
    close: async () => {
      for (const s of connections) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}

/** A client socket that collects what it receives and how it ended. */
function client(port: number): { socket: Socket; received: () => string; ended: Promise<string> } {
  const socket = connect(port, '127.0.0.1');
  let data = '';
  socket.setEncoding('utf8');
  socket.on('data', (chunk: string) => { data += chunk; });
  const ended = new Promise<string>((resolve) => {
    let why = 'close';
    socket.on('error', (e: NodeJS.ErrnoException) => { why = e.code ?? e.message; });
    socket.on('close', () => resolve(why));
  });
  return { socket, received: () => data, ended };
}

async function until(what: string, cond: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** Only for asserting that nothing happens within a window. */
const quietWindow = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('pass forwards both ways; a target that closes closes the client', async () => {
  const echo = await echoServer();
  const proxy = await FaultProxy.start({ name: 'a->b', targetPort: echo.port });
  try {
    const c = client(proxy.port);
    c.socket.write('hello');
    await until('echo', () => c.received() === 'hello');
    assert.equal(proxy.mode, 'pass');
    assert.equal(proxy.openConnections, 1);
    for (const s of echo.connections) s.destroy();
    assert.notEqual(await c.ended, undefined);
    await until('link gone', () => proxy.openConnections === 0);
  } finally {
    await proxy.close();
    await echo.close();
  }
});

test('blackhole: silence both ways, nothing closed; heal delivers what was held and connects held new connections', async () => {
  const echo = await echoServer();
  const proxy = await FaultProxy.start({ name: 'a->b', targetPort: echo.port });
  try {
    const old = client(proxy.port);
    old.socket.write('1');
    await until('first echo', () => old.received() === '1');
    proxy.blackhole();
    old.socket.write('2');
    const fresh = client(proxy.port);
    await once(fresh.socket, 'connect'); // accepted: the dialler sees a connection, not a refusal
    fresh.socket.write('x');
    let closed = false;
    void old.ended.then(() => { closed = true; });
    void fresh.ended.then(() => { closed = true; });
    await quietWindow(300);
    assert.equal(old.received(), '1', 'nothing forwarded on the old connection');
    assert.equal(fresh.received(), '', 'nothing forwarded on the new connection');
    assert.equal(closed, false, 'no close or reset seen by the dialler');
    assert.equal(echo.connections.size, 1, 'the held new connection has no upstream yet');
    proxy.heal();
    await until('held bytes delivered', () => old.received() === '12' && fresh.received() === 'x');
    assert.equal(echo.connections.size, 2);
    old.socket.write('3');
    await until('flowing again', () => old.received() === '123');
    old.socket.destroy();
    fresh.socket.destroy();
  } finally {
    await proxy.close();
    await echo.close();
  }
});

test('blackhole holds answers too: bytes the target sent before the cut arrive only after heal', async () => {
  const echo = await echoServer();
  const proxy = await FaultProxy.start({ name: 'a->b', targetPort: echo.port });
  try {
    const c = client(proxy.port);
    c.socket.write('a');
    await until('echo', () => c.received() === 'a');
    proxy.blackhole();
    const [server] = [...echo.connections];
    server.write('push'); // the target speaks into the partition
    await quietWindow(200);
    assert.equal(c.received(), 'a');
    proxy.heal();
    await until('push delivered', () => c.received() === 'apush');
    c.socket.destroy();
  } finally {
    await proxy.close();
    await echo.close();
  }
});

test('reset: open connections get an RST, new ones are reset at once; heal lets new ones through', async () => {
  const echo = await echoServer();
  const proxy = await FaultProxy.start({ name: 'a->etcd', targetPort: echo.port });
  try {
    const old = client(proxy.port);
    old.socket.write('1');
    await until('echo', () => old.received() === '1');
    proxy.reset();
    assert.equal(await old.ended, 'ECONNRESET');
    await until('target side closed', () => echo.connections.size === 0);
    const refused = client(proxy.port);
    assert.match(await refused.ended, /ECONNRESET|close/);
    assert.equal(refused.received(), '');
    assert.ok(proxy.resets >= 2);
    proxy.heal();
    const fresh = client(proxy.port);
    fresh.socket.write('ok');
    await until('through after heal', () => fresh.received() === 'ok');
    fresh.socket.destroy();
  } finally {
    await proxy.close();
    await echo.close();
  }
});

test('a target that is down: the dialler is closed, as a refused connection would be', async () => {
  const echo = await echoServer();
  const port = echo.port;
  await echo.close();
  const proxy = await FaultProxy.start({ name: 'a->dead', targetPort: port });
  try {
    const c = client(proxy.port);
    assert.notEqual(await c.ended, undefined);
    await until('no link left', () => proxy.openConnections === 0);
  } finally {
    await proxy.close();
  }
});

test('maxConnections: connections beyond it are reset', async () => {
  const echo = await echoServer();
  const proxy = await FaultProxy.start({ name: 'a->b', targetPort: echo.port, limits: { maxConnections: 2 } });
  try {
    const a = client(proxy.port);
    const b = client(proxy.port);
    a.socket.write('a');
    b.socket.write('b');
    await until('two through', () => a.received() === 'a' && b.received() === 'b');
    const c = client(proxy.port);
    assert.match(await c.ended, /ECONNRESET|close/);
    a.socket.destroy();
    b.socket.destroy();
  } finally {
    await proxy.close();
    await echo.close();
  }
});
