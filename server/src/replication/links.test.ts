/**
 * ReplicationServer and PeerLinks over real TCP on 127.0.0.1: handshake,
 * heartbeats, fetch and extension dispatch, ERROR answers, timeouts, aborts,
 * the in-flight bound, bad peers, and the failure detector's events
 * (closed, refused, reconnect with backoff), and the link key's challenge-response.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect } from 'node:net';
import { test } from 'node:test';
import { RunnelError } from '@runnel/client/codec';
import type { PeerDirectory } from '../cluster/cluster-state.ts';
import { PeerLinks, type PeerDownReason } from './peer-links.ts';
import { REPLICATION_PROTOCOL_VERSION, type FetchRequest, type ReplicationFrame } from './protocol.ts';
import { FrameSocket } from './frame-socket.ts';
import { linkProof } from './link-auth.ts';
import { ReplicationServer } from './replication-server.ts';
import { TEST_LINK_KEY } from './testing/link-key.ts';

const quiet = { warn: () => {} };

/** A directory over a mutable map (tests move brokers). */
function directory(): PeerDirectory & { set(id: number, port: number): void } {
  const ports = new Map<number, number>();
  return {
    set: (id, port) => ports.set(id, port),
    replicationAddress: (id) => (ports.has(id) ? { host: '127.0.0.1', port: ports.get(id)! } : undefined),
  };
}

function fetchRequest(patch: Partial<FetchRequest> = {}): FetchRequest {
  return { topicId: 't1', partition: 0, replicaId: 2, currentLeaderEpoch: 1, lastFetchedEpoch: -1, fetchOffset: 0, knownHighWatermark: 0, maxBytes: 1 << 20, maxWaitMs: 0, ...patch };
}

const isCode = (name: string) => (e: unknown) => e instanceof RunnelError && e.errorName === name;

test('handshake, heartbeat, fetch and extension dispatch name the dialing broker; ERROR answers carry their code', async () => {
  const server = new ReplicationServer({ linkKey: TEST_LINK_KEY, brokerId: 1, ...quiet });
  const { port } = await server.listen();
  const dir = directory();
  dir.set(1, port);
  const links = new PeerLinks({ linkKey: TEST_LINK_KEY, brokerId: 2, directory: dir });
  try {
    const seen: number[] = [];
    server.handle(0x20, async (body, from) => {
      seen.push(from);
      if (body[0] === 0) throw new RunnelError('NOT_LEADER_OR_FOLLOWER', 'not me');
      return body.map((b) => b * 2);
    });
    const records = new Uint8Array(3 * 1024 * 1024).map((_, i) => i % 251);
    server.registerReplica('t1', 0, async (request, from) => {
      assert.equal(from, 2);
      return { leaderEpoch: request.currentLeaderEpoch, highWatermark: 5, logStartOffset: 0, logEndOffset: 9, divergingEpoch: null, records };
    });
    assert.ok((await links.heartbeat(1, 5000)).roundTripMs >= 0);
    assert.ok(links.isConnected(1));
    assert.deepEqual(await links.request(1, 0x20, new Uint8Array([1, 2, 3]), 5000), new Uint8Array([2, 4, 6]));
    await assert.rejects(links.request(1, 0x20, new Uint8Array([0]), 5000), isCode('NOT_LEADER_OR_FOLLOWER'));
    await assert.rejects(links.request(1, 0x21, new Uint8Array(0), 5000), isCode('INVALID_REQUEST'));
    assert.deepEqual(seen, [2, 2]);
    const answer = await links.fetch(1, fetchRequest({ currentLeaderEpoch: 7 }), 5000);
    assert.equal(answer.leaderEpoch, 7);
    assert.deepEqual(answer.records, records, 'a 3 MiB answer arrives whole over many TCP chunks');
    await assert.rejects(links.fetch(1, fetchRequest({ partition: 3 }), 5000), isCode('UNKNOWN_TOPIC_OR_PARTITION'));
    // Many requests at once on one connection, answered out of order.
    server.handle(0x22, async (body) => {
      await new Promise((r) => setTimeout(r, 20 - body[0]));
      return body;
    });
    const answers = await Promise.all(Array.from({ length: 20 }, (_, i) => links.request(1, 0x22, new Uint8Array([i]), 5000)));
    assert.deepEqual(answers.map((a) => a[0]), Array.from({ length: 20 }, (_, i) => i));
  } finally {
    links.close();
    await server.close();
  }
});

test('timeouts, aborts and the in-flight bound: each request settles once; a closed connection aborts the handlers still running', async () => {
  const server = new ReplicationServer({ linkKey: TEST_LINK_KEY, brokerId: 1, limits: { maxInflightRequestsPerConnection: 4 }, ...quiet });
  const { port } = await server.listen();
  const dir = directory();
  dir.set(1, port);
  const links = new PeerLinks({ linkKey: TEST_LINK_KEY, brokerId: 2, directory: dir, limits: { maxInflightRequestsPerConnection: 4 } });
  let aborted = 0;
  const release: (() => void)[] = [];
  server.handle(0x30, (body, _from, signal) => new Promise((resolve) => {
    signal.addEventListener('abort', () => { aborted++; });
    release.push(() => resolve(body));
  }));
  try {
    await assert.rejects(links.request(1, 0x30, new Uint8Array([1]), 50), isCode('REQUEST_TIMED_OUT'));
    const abort = new AbortController();
    const aborting = links.request(1, 0x30, new Uint8Array([2]), 5000, abort.signal);
    abort.abort();
    await assert.rejects(aborting, isCode('ABORTED'));
    // The two above still occupy handlers on the server, not on the client.
    const held = [links.request(1, 0x30, new Uint8Array([3]), 5000), links.request(1, 0x30, new Uint8Array([4]), 5000)];
    await assert.rejects(links.request(1, 0x30, new Uint8Array([5]), 5000), isCode('LIMIT_EXCEEDED'), 'the server refuses a fifth running handler');
    for (const r of release.splice(0)) r();
    assert.deepEqual((await Promise.all(held)).map((b) => b[0]), [3, 4]);
    const many = Array.from({ length: 4 }, () => links.request(1, 0x30, new Uint8Array([6]), 5000));
    await assert.rejects(links.request(1, 0x30, new Uint8Array([7]), 5000), isCode('LIMIT_EXCEEDED'), 'the client refuses a fifth unanswered request');
    while (release.length < 4) await new Promise((r) => setTimeout(r, 5));
    await server.close();
    for (const p of many) await assert.rejects(p, isCode('NOT_CONNECTED'));
    assert.equal(aborted, 4, 'closing the connection aborted the 4 running handlers');
  } finally {
    links.close();
    await server.close();
  }
});

test('onPeerDown: closed when an open connection ends, refused while nobody listens; the link reconnects with backoff when the broker returns', async () => {
  let server = new ReplicationServer({ linkKey: TEST_LINK_KEY, brokerId: 1, ...quiet });
  const { port } = await server.listen();
  const dir = directory();
  dir.set(1, port);
  const links = new PeerLinks({ linkKey: TEST_LINK_KEY, brokerId: 2, directory: dir, limits: { reconnectBackoffMs: 20, reconnectBackoffMaxMs: 100 } });
  const events: [number, PeerDownReason][] = [];
  let wake = () => {};
  links.onPeerDown((id, reason) => { events.push([id, reason]); wake(); });
  const until = (check: () => boolean) => new Promise<void>((resolve) => {
    wake = () => { if (check()) resolve(); };
    wake();
  });
  try {
    await links.heartbeat(1, 5000);
    assert.equal(links.nothingListens(1), false, 'connected');
    await server.close();
    await until(() => events.some(([, r]) => r === 'refused'));
    assert.equal(links.nothingListens(1), true, 'the host refuses the dial (ECONNREFUSED): nothing listens, the broker is gone');
    assert.deepEqual(events[0], [1, 'closed']);
    assert.deepEqual(events[1], [1, 'refused']);
    await assert.rejects(links.heartbeat(1, 5000), isCode('NOT_CONNECTED'), 'a request while the peer is down fails at the next refused connect');
    server = new ReplicationServer({ linkKey: TEST_LINK_KEY, brokerId: 1, port, ...quiet });
    await server.listen();
    for (let i = 0; !links.isConnected(1); i++) {
      assert.ok(i < 500, 'reconnected');
      await new Promise((r) => setTimeout(r, 10));
    }
    await links.heartbeat(1, 5000);
    assert.equal(links.nothingListens(1), false, 'it listens again');
    // Unknown broker: no address, no event.
    await assert.rejects(links.heartbeat(9, 5000), isCode('NOT_CONNECTED'));
  } finally {
    links.close();
    await server.close();
  }
});

test('a wrong broker at the address is refused; a peer sending garbage or skipping the handshake is disconnected', async () => {
  const server = new ReplicationServer({ linkKey: TEST_LINK_KEY, brokerId: 1, limits: { connectTimeoutMs: 200 }, ...quiet });
  const { port } = await server.listen();
  const dir = directory();
  dir.set(3, port);
  const links = new PeerLinks({ linkKey: TEST_LINK_KEY, brokerId: 2, directory: dir });
  const events: PeerDownReason[] = [];
  links.onPeerDown((_id, reason) => events.push(reason));
  try {
    await assert.rejects(links.heartbeat(3, 5000), (e: RunnelError) => e.errorName === 'NOT_CONNECTED' && /answered as broker 1/.test(e.message));
    assert.equal(events[0], 'refused');
    assert.equal(links.nothingListens(3), false, 'a wrong broker answering is refused, but something listens');
    links.release(3);
    for (const bytes of [Buffer.from('GET / HTTP/1.1\r\n\r\n'), Buffer.from([0, 0, 0, 13, 0x02, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0])]) {
      const raw = connect({ host: '127.0.0.1', port });
      await once(raw, 'connect');
      raw.write(bytes);
      raw.resume();
      await once(raw, 'close');
    }
    const silent = connect({ host: '127.0.0.1', port });
    await once(silent, 'connect');
    silent.resume();
    await once(silent, 'close');
    assert.equal(server.connectionCount, 0, 'no handshake within connectTimeoutMs: closed');
  } finally {
    links.close();
    await server.close();
  }
});

test("onPeerDown 'timeout': a peer that accepts TCP but never answers the handshake within connectTimeoutMs", async () => {
  const { createServer } = await import('node:net');
  const accepted: import('node:net').Socket[] = [];
  const mute = createServer((s) => { accepted.push(s); s.resume(); });
  await new Promise<void>((r) => mute.listen(0, '127.0.0.1', r));
  const port = (mute.address() as { port: number }).port;
  const links = new PeerLinks({ linkKey: TEST_LINK_KEY, brokerId: 2, directory: { replicationAddress: () => ({ host: '127.0.0.1', port }) }, limits: { connectTimeoutMs: 150, reconnectBackoffMs: 1000, reconnectBackoffMaxMs: 1000 } });
  const events: PeerDownReason[] = [];
  links.onPeerDown((_id, reason) => events.push(reason));
  try {
    const startedAt = performance.now();
    await assert.rejects(links.heartbeat(5, 5000), (e: RunnelError) => e.errorName === 'NOT_CONNECTED' && /no handshake/.test(e.message));
    assert.ok(performance.now() - startedAt >= 140, 'failed at connectTimeoutMs, not at the request timeout');
    assert.deepEqual(events, ['timeout']);
    assert.equal(links.nothingListens(5), false, 'a dial that times out is silence (a cut), not a refusal');
  } finally {
    links.close();
    for (const s of accepted) s.destroy();
    await new Promise<void>((r) => mute.close(() => r()));
  }
});

/** A raw dialer: a FrameSocket on a fresh TCP connection, every received frame queued. */
async function rawPeer(port: number): Promise<{ socket: FrameSocket; next(): Promise<ReplicationFrame | 'closed'> }> {
  const received: (ReplicationFrame | 'closed')[] = [];
  let wake = () => {};
  const raw = connect({ host: '127.0.0.1', port });
  await once(raw, 'connect');
  const socket = new FrameSocket(raw, 1 << 20, { frame: (f) => { received.push(f); wake(); }, close: () => { received.push('closed'); wake(); } });
  const next = async (): Promise<ReplicationFrame | 'closed'> => {
    while (received.length === 0) await new Promise<void>((r) => { wake = r; });
    return received.shift()!;
  };
  return { socket, next };
}

test('link key: peers of another cluster are refused both ways; a recorded proof replays on no other connection; nothing is served before a valid proof', async () => {
  const otherKey = new Uint8Array(32).fill(0x11);
  const server = new ReplicationServer({ linkKey: TEST_LINK_KEY, brokerId: 1, ...quiet });
  const { port } = await server.listen();
  let served = 0;
  server.handle(0x21, async () => { served++; return new Uint8Array(0); });
  const dir = directory();
  dir.set(1, port);
  const stranger = new PeerLinks({ linkKey: otherKey, brokerId: 2, directory: dir });
  const impostor = new ReplicationServer({ linkKey: otherKey, brokerId: 4, ...quiet });
  const { port: impostorPort } = await impostor.listen();
  dir.set(4, impostorPort);
  const member = new PeerLinks({ linkKey: TEST_LINK_KEY, brokerId: 3, directory: dir });
  try {
    // The listener checks the dialer's key, the dialer the listener's.
    await assert.rejects(member.request(4, 0x21, new Uint8Array(0), 5000), (e: RunnelError) => e.errorName === 'NOT_CONNECTED' && /did not prove the cluster's link key/.test(e.message));
    await assert.rejects(stranger.request(1, 0x21, new Uint8Array(0), 5000), (e: RunnelError) => e.errorName === 'NOT_CONNECTED');
    assert.equal(served, 0, 'a dialer with another key is served nothing');
    assert.deepEqual(await member.request(1, 0x21, new Uint8Array(0), 5000), new Uint8Array(0));
    assert.equal(served, 1);

    // A legitimate handshake, recorded: its proof is bound to that connection's listener nonce.
    const dialerNonce = new Uint8Array(16).fill(3);
    const first = await rawPeer(port);
    first.socket.send({ kind: 'handshake', correlationId: 0, version: REPLICATION_PROTOCOL_VERSION, brokerId: 5, nonce: dialerNonce });
    const ok = await first.next();
    assert.ok(ok !== 'closed' && ok.kind === 'handshakeOk');
    const proof = linkProof(TEST_LINK_KEY, 'dialer', { dialerId: 5, listenerId: 1, dialerNonce, listenerNonce: ok.nonce });
    first.socket.close();
    const replay = await rawPeer(port);
    replay.socket.send({ kind: 'handshake', correlationId: 0, version: REPLICATION_PROTOCOL_VERSION, brokerId: 5, nonce: dialerNonce });
    const ok2 = await replay.next();
    assert.ok(ok2 !== 'closed' && ok2.kind === 'handshakeOk');
    assert.notDeepEqual(ok2.nonce, ok.nonce, 'a fresh listener nonce per connection');
    replay.socket.send({ kind: 'handshakeProof', correlationId: 0, mac: proof });
    replay.socket.send({ kind: 'extension', correlationId: 7, requestType: 0x21, body: new Uint8Array(0) });
    const refusal = await replay.next();
    assert.ok(refusal !== 'closed' && refusal.kind === 'error' && refusal.code === 'SASL_AUTHENTICATION_FAILED', JSON.stringify(refusal));
    assert.equal(await replay.next(), 'closed');
    assert.equal(served, 1, 'the request after a replayed proof was not served');
  } finally {
    stranger.close();
    member.close();
    await impostor.close();
    await server.close();
  }
});
