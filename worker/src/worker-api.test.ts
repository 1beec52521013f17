/**
 * The worker host's acknowledgment tickets through its API (as a tab calls
 * it): bounded by maxPendingTickets (refused before the record is queued),
 * due by ticketTimeoutMs, and released when the ack resolves, when it
 * rejects and when the tab releases its port. The host's client talks to the
 * SDK's in-memory FakeBroker through a WebSocket-shaped adapter, or to a
 * socket that never opens (nothing is ever acknowledged).
 */
import 'fake-indexeddb/auto';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { expose, finalizer, releaseProxy, wrap } from 'comlink';
import { RunnelError, type WebSocketConstructor } from '@runnel/client';
import { FakeBroker } from '../../client-sdk/src/fake-broker.ts';
import { createPortHost, SEND_ID_HEADER, type Result, type WorkerApi } from './worker-api.ts';

type WebSocketLike = InstanceType<WebSocketConstructor>;
const g = globalThis as { WebSocket?: unknown };

/** A WebSocket class whose sockets reach `broker`, or (no broker) never open. */
function webSocketTo(broker: FakeBroker | null): new (url: string) => WebSocketLike {
  return class implements WebSocketLike {
    binaryType = 'arraybuffer';
    bufferedAmount = 0;
    readyState = 0;
    onopen: WebSocketLike['onopen'] = null;
    onmessage: WebSocketLike['onmessage'] = null;
    onclose: WebSocketLike['onclose'] = null;
    onerror: WebSocketLike['onerror'] = null;
    readonly #link;
    constructor(url: string) {
      this.#link = broker?.transport(url, {
        open: () => { this.readyState = 1; this.onopen?.({}); },
        message: (data) => this.onmessage?.({ data }),
        close: (code, reason) => { this.readyState = 3; this.onclose?.({ code, reason }); },
        error: (error) => this.onerror?.(error),
      });
    }
    send(data: Uint8Array): void { this.#link?.send(data); }
    close(code?: number, reason?: string): void { this.#link?.close(code, reason); }
  };
}

let databases = 0;
async function host(broker: FakeBroker | null, limits: Parameters<typeof createPortHost>[0]) {
  g.WebSocket = webSocketTo(broker);
  const h = createPortHost(limits);
  await h.api.init({ urls: 'ws://fake/v1/ws', databaseName: `worker-api-${++databases}`, reconnect: { initialDelayMs: 2, maxDelayMs: 10 } });
  return h;
}
const errorName = (r: Result<unknown>): string | undefined => ('runnelError' in r ? r.runnelError.errorName : undefined);
const ticketOf = (r: Result<number>): number => {
  assert.ok('ok' in r, `send refused: ${JSON.stringify(r)}`);
  return r.ok;
};

test('over maxPendingTickets a send is refused LIMIT_EXCEEDED before its record is queued', { timeout: 20_000 }, async () => {
  const h = await host(null, { maxPendingTickets: 2 });
  try {
    ticketOf(await h.api.send('t', { n: 1 }, {}));
    ticketOf(await h.api.send('t', { n: 2 }, { durability: 'memory' }));
    const refused = await h.api.send('t', { n: 3 }, {});
    assert.equal(errorName(refused), 'LIMIT_EXCEEDED');
    assert.equal(h.api.outboxSize().records, 2, 'the refused record was not queued');
  } finally {
    await h.api.shutdown();
  }
});

test('an ack that resolves or rejects releases its ticket', { timeout: 20_000 }, async () => {
  const broker = new FakeBroker(1);
  const h = await host(broker, { maxPendingTickets: 1 });
  try {
    const acked = await h.api.ack(ticketOf(await h.api.send('t', { n: 1 }, {})));
    assert.ok('ok' in acked && acked.ok.offset === 0, JSON.stringify(acked));
    const failed = await h.api.ack(ticketOf(await h.api.send('t', { n: 2 }, { partition: 9 })));
    assert.equal(errorName(failed), 'UNKNOWN_TOPIC_OR_PARTITION');
    const again = await h.api.ack(ticketOf(await h.api.send('t', { n: 3 }, {})));
    assert.ok('ok' in again && again.ok.offset === 1, JSON.stringify(again));
    assert.equal(errorName(await h.api.ack(999)), 'INVALID_REQUEST', 'unknown tickets are refused');
  } finally {
    await h.api.shutdown();
  }
});

test('an ack still unanswered at ticketTimeoutMs rejects REQUEST_TIMED_OUT (retryable) and its ticket is removed', { timeout: 20_000 }, async () => {
  const h = await host(null, { maxPendingTickets: 1, ticketTimeoutMs: 50 });
  try {
    const ticket = ticketOf(await h.api.send('t', { n: 1 }, {}));
    assert.equal(errorName(await h.api.ack(ticket)), 'REQUEST_TIMED_OUT');
    assert.equal(new RunnelError('REQUEST_TIMED_OUT').retryable, true, 'the tab rebuilds it as a retryable RunnelError');
    assert.equal(errorName(await h.api.ack(ticket)), 'INVALID_REQUEST', 'the expired ticket is gone');
    ticketOf(await h.api.send('t', { n: 2 }, {})); // its room is free again
    assert.equal(h.api.outboxSize().records, 2, 'the timed-out record stays in the outbox');
  } finally {
    await h.api.shutdown();
  }
});

test('a tab that releases its port releases the tickets it held; other ports keep theirs', { timeout: 20_000 }, async () => {
  const h = await host(null, { maxPendingTickets: 2 });
  const view = h.forPort();
  const released = new Promise<void>((resolve) => {
    const release = view[finalizer];
    view[finalizer] = () => { release(); resolve(); };
  });
  const channel = new MessageChannel();
  expose(view, channel.port1 as any);
  const tab = wrap<WorkerApi>(channel.port2 as any);
  try {
    const other = h.forPort();
    ticketOf(await other.send('t', { n: 0 }, {}));
    ticketOf(await tab.send('t', { n: 1 }, {}));
    assert.equal(errorName(await other.send('t', { n: 2 }, {})), 'LIMIT_EXCEEDED', 'both tickets held');
    tab[releaseProxy]();
    await released;
    ticketOf(await other.send('t', { n: 3 }, {}));
    assert.equal(errorName(await other.send('t', { n: 4 }, {})), 'LIMIT_EXCEEDED', 'only the released port\'s ticket was dropped');
  } finally {
    channel.port1.close();
    channel.port2.close();
    await h.api.shutdown();
  }
});

test('failover: the shared client moves to the next URL at once; a tab\'s sends are acked and its subscription resumes with no gap or duplicate', { timeout: 20_000 }, async () => {
  const broker = new FakeBroker(1);
  g.WebSocket = webSocketTo(broker);
  const h = createPortHost({});
  // NB: a long backoff, so the move to the next URL is seen to happen at once.
  await h.api.init({ urls: ['ws://a/v1/ws', 'ws://b/v1/ws'], databaseName: `worker-api-${++databases}`, reconnect: { initialDelayMs: 5_000, maxDelayMs: 10_000 } });
  const seen: number[] = [];
  try {
    const first = await h.api.ack(ticketOf(await h.api.send('t', { n: 0 }, {})));
    assert.ok('ok' in first, JSON.stringify(first));
    const sub = await h.api.subscribe('tab', 't', async (records) => { for (const r of records) seen.push(r.offset); }, { from: 'earliest', consumerId: 'tab' });
    assert.ok('ok' in sub);
    await new Promise((r) => setTimeout(r, 1_100)); // past STABLE_SESSION_MS: a shorter session counts as a failed dial
    const lostAt = Date.now();
    broker.produceErrors = ['NOT_LEADER_OR_FOLLOWER']; // the next broker is still electing
    broker.dropConnections();
    const acks = await Promise.all(Array.from({ length: 20 }, async (_, i) => h.api.ack(ticketOf(await h.api.send('t', { n: i + 1 }, {})))));
    assert.ok(acks.every((a) => 'ok' in a), JSON.stringify(acks.find((a) => !('ok' in a))));
    assert.deepEqual(broker.dialed.map((d) => d.url), ['ws://a/v1/ws', 'ws://b/v1/ws']);
    assert.ok(broker.dialed[1].atMs - lostAt < 1_000, 'the next URL at once');
    const end = Date.now() + 10_000;
    while (seen.length < 21 && Date.now() < end) await new Promise((r) => setTimeout(r, 5));
    assert.deepEqual(seen, Array.from({ length: 21 }, (_, i) => i));
  } finally {
    await h.api.shutdown();
  }
});

test('a send whose id is already in the outbox the host loaded is not queued again: acked once the outbox drained, offset -1', { timeout: 20_000 }, async () => {
  const databaseName = `worker-api-${++databases}`;
  // The host that is gone: it queued two sends and never reached a broker.
  g.WebSocket = webSocketTo(null);
  const gone = createPortHost({});
  await gone.api.init({ urls: 'ws://fake/v1/ws', databaseName });
  for (const id of ['tab-a:1', 'tab-a:2']) ticketOf(await gone.api.send('t', { id }, { headers: { [SEND_ID_HEADER]: id } }));
  await gone.api.shutdown();
  // The next host on the same database: its tabs make again the sends they had no answer for.
  const broker = new FakeBroker(1);
  g.WebSocket = webSocketTo(broker);
  const next = createPortHost({});
  await next.api.init({ urls: 'ws://fake/v1/ws', databaseName, reconnect: { initialDelayMs: 2, maxDelayMs: 10 } });
  const seen: string[] = [];
  try {
    const again = await next.api.ack(ticketOf(await next.api.send('t', { id: 'tab-a:2' }, { headers: { [SEND_ID_HEADER]: 'tab-a:2' } })));
    assert.deepEqual(again, { ok: { topic: 't', partition: -1, offset: -1 } }, 'in the loaded outbox: resolved once it drained, position unknown');
    const fresh = await next.api.ack(ticketOf(await next.api.send('t', { id: 'tab-b:1' }, { headers: { [SEND_ID_HEADER]: 'tab-b:1' } })));
    assert.ok('ok' in fresh && fresh.ok.offset === 2, `a new id is queued and acked with its offset: ${JSON.stringify(fresh)}`);
    const twice = await next.api.ack(ticketOf(await next.api.send('t', { id: 'tab-a:2' }, { headers: { [SEND_ID_HEADER]: 'tab-a:2' } })));
    assert.ok('ok' in twice && twice.ok.offset === 3, 'an id counts once: sent again after that, it is a new record');
    await next.api.subscribe('tab', 't', async (records) => { for (const r of records) seen.push((r.value as { id: string }).id); }, { from: 'earliest', consumerId: 'check' });
    const end = Date.now() + 10_000;
    while (seen.length < 4 && Date.now() < end) await new Promise((r) => setTimeout(r, 5));
    assert.deepEqual(seen, ['tab-a:1', 'tab-a:2', 'tab-b:1', 'tab-a:2']);
  } finally {
    await next.api.shutdown();
  }
});
