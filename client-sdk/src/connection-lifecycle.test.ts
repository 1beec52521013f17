/**
 * Connection and the page lifecycle (issue 13), against the in-process fake broker with a Node EventTarget
 * standing in for the window and its document:
 * - `online` dials at once while a (long) backoff is pending;
 * - `pagehide`/`freeze` close cleanly (1000), fail pending requests NOT_CONNECTED and dial no more;
 *   `pageshow`/`resume` dial the same URL again;
 * - after a stable session drops (a broker restart) the broker is redialled at least every
 *   FAST_RETRY_MAX_DELAY_MS, so the link is back within that of the broker answering (mocked time).
 */
import { mock, test } from 'node:test';
import assert from 'node:assert/strict';
import type { RunnelError } from './codec/error-codes.ts';
import { Connection, type ConnectionOptions } from './connection.ts';
import { FakeBroker } from './fake-broker.ts';
import type { TransportFactory } from './transport.ts';
import { FAST_RETRY_MAX_DELAY_MS, FAST_RETRY_WINDOW_MS, STABLE_SESSION_MS, seededRandom } from './reconnect-policy.ts';

class FakeWindow extends EventTarget {
  readonly document = new EventTarget();
}

const URLS = ['ws://a/v1/ws'];

function connection(broker: FakeBroker, scope: FakeWindow, extra: Partial<ConnectionOptions> = {}): Connection {
  return new Connection({ urls: URLS, transport: broker.transport, clientId: 'c', random: seededRandom(3), lifecycle: scope, ...extra });
}

const until = async (what: string, cond: () => boolean, ms = 5_000): Promise<void> => {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('online while backing off dials at once', async () => {
  const broker = new FakeBroker(1), win = new FakeWindow();
  broker.refuseConnections = true;
  // NB: a one-minute backoff: a reconnect within the test can only be the one `online` started.
  const conn = connection(broker, win, { reconnect: { initialDelayMs: 60_000, maxDelayMs: 60_000 }, random: () => 0.999 });
  try {
    conn.open();
    await until('the first dial failed', () => conn.state === 'reconnecting');
    await sleep(50);
    assert.equal(broker.dialed.length, 1, 'backing off, not dialling');
    broker.refuseConnections = false;
    win.dispatchEvent(new Event('online'));
    await until('connected', () => conn.state === 'connected', 2_000);
    assert.equal(broker.dialed.length, 2);
    // Connected: `online` again does nothing.
    win.dispatchEvent(new Event('online'));
    await sleep(20);
    assert.equal(broker.dialed.length, 2);
    assert.equal(conn.state, 'connected');
  } finally {
    conn.close();
  }
});

for (const [hide, show] of [['pagehide', 'pageshow'], ['freeze', 'resume']] as const) {
  test(`${hide} closes cleanly and dials no more; ${show} dials the same URL again`, async () => {
    const broker = new FakeBroker(1), win = new FakeWindow();
    const target = hide === 'freeze' ? win.document : win;
    const conn = connection(broker, win, { reconnect: { initialDelayMs: 1, maxDelayMs: 1 } });
    const disconnects: { code: number; reason: string }[] = [];
    conn.on('disconnected', (d) => disconnects.push(d));
    try {
      conn.open();
      await until('connected', () => conn.state === 'connected');
      const sessionsBefore = [...broker.sessions];
      broker.holdMetadata = true;
      const pending = conn.request({ type: 'metadataRequest', topics: ['t'], allowAutoTopicCreation: 1 });
      target.dispatchEvent(new Event(hide));
      // Synchronously: whatever else runs in this event (a beacon flush) already sees the link gone.
      assert.equal(conn.state, 'reconnecting');
      assert.equal(conn.suspended, true);
      await assert.rejects(pending, (e: RunnelError) => e.errorName === 'NOT_CONNECTED');
      assert.deepEqual(disconnects, [{ code: 1000, reason: 'page hidden' }]);
      assert.equal(sessionsBefore[0]!.alive, false, 'the broker saw the close');
      await sleep(100); // 1 ms backoff: a dial would have happened
      assert.equal(broker.dialed.length, 1, 'no dial while suspended');
      win.dispatchEvent(new Event('online'));
      await sleep(20);
      assert.equal(broker.dialed.length, 1, 'online does not wake a suspended page');
      assert.equal(conn.send({ type: 'ping', nonce: 1 }), false);
      broker.holdMetadata = false;
      target.dispatchEvent(new Event(show));
      await until('connected again', () => conn.state === 'connected');
      assert.deepEqual(broker.dialed.map((d) => d.url), [URLS[0], URLS[0]]);
      assert.equal(conn.suspended, false);
      const answer = await conn.request({ type: 'metadataRequest', topics: ['t'], allowAutoTopicCreation: 1 });
      assert.equal(answer.type, 'metadata');
    } finally {
      conn.close();
    }
  });
}

test('a page hidden while dialling does not finish the dial; pageshow on a page never hidden does nothing', async () => {
  const broker = new FakeBroker(1), win = new FakeWindow();
  const conn = connection(broker, win);
  try {
    win.dispatchEvent(new Event('pageshow'));
    assert.equal(conn.state, 'idle');
    conn.open();
    assert.equal(conn.state, 'connecting');
    win.dispatchEvent(new Event('pagehide'));
    assert.equal(conn.state, 'reconnecting');
    await sleep(50);
    assert.equal(conn.state, 'reconnecting', 'the hello of the closed dial is never answered');
    win.dispatchEvent(new Event('pageshow'));
    await until('connected', () => conn.state === 'connected');
    assert.equal(broker.dialed.length, 2);
  } finally {
    conn.close();
  }
});

test('close() removes the lifecycle listeners', async () => {
  const broker = new FakeBroker(1), win = new FakeWindow();
  const conn = connection(broker, win);
  conn.open();
  await until('connected', () => conn.state === 'connected');
  conn.close();
  win.dispatchEvent(new Event('pagehide'));
  win.dispatchEvent(new Event('pageshow'));
  win.dispatchEvent(new Event('online'));
  await sleep(20);
  assert.equal(conn.state, 'closed');
  assert.equal(conn.suspended, false);
  assert.equal(broker.dialed.length, 1);
});

test('after a stable session drops, a restarting broker is redialled at least every FAST_RETRY_MAX_DELAY_MS (mocked time)', async () => {
  mock.timers.enable({ apis: ['setTimeout', 'Date'] }); // the fake broker answers with setImmediate: real
  const broker = new FakeBroker(1), win = new FakeWindow();
  // The defaults of limits.ts: without the fast window the ceiling reaches 6.4 s within 8 s of failures.
  const conn = connection(broker, win, { random: () => 0.999 });
  const turn = async (): Promise<void> => { for (let i = 0; i < 4; i++) await new Promise((r) => setImmediate(r)); };
  const advance = async (ms: number): Promise<void> => { for (let t = 0; t < ms; t += 10) { mock.timers.tick(10); await turn(); } };
  try {
    conn.open();
    await turn();
    await advance(10);
    assert.equal(conn.state, 'connected');
    await advance(STABLE_SESSION_MS + 100);
    broker.refuseConnections = true;
    const downAt = Date.now();
    broker.dropConnections();
    await advance(8_000);
    const dials = broker.dialed.slice(1).map((d) => d.atMs - downAt);
    const gaps = dials.map((t, i) => t - (i === 0 ? 0 : dials[i - 1]!));
    assert.ok(dials.length >= 8_000 / FAST_RETRY_MAX_DELAY_MS, `dialled ${dials.length} times in 8 s`);
    assert.ok(Math.max(...gaps) <= FAST_RETRY_MAX_DELAY_MS + 20, `largest gap ${Math.max(...gaps)} ms`);
    broker.refuseConnections = false;
    const upAt = Date.now();
    while (conn.state !== 'connected' && Date.now() - upAt < 5_000) await advance(10);
    assert.equal(conn.state, 'connected');
    assert.ok(Date.now() - upAt <= FAST_RETRY_MAX_DELAY_MS + 20, `reconnected ${Date.now() - upAt} ms after the broker was back`);
    // Past the window the plain backoff applies again: a long outage is not dialled at this rate for ever.
    await advance(STABLE_SESSION_MS + 100);
    broker.refuseConnections = true;
    const before = broker.dialed.length;
    broker.dropConnections();
    await advance(FAST_RETRY_WINDOW_MS + 30_000);
    const late = broker.dialed.slice(before).filter((d) => d.atMs - Date.now() > -30_000);
    assert.ok(late.length <= 30_000 / 5_000 + 2, `${late.length} dials in the 30 s after the window`);
  } finally {
    conn.close();
    mock.timers.reset();
  }
});

test('a broker that freezes while a request waits is dropped after ~2 s of silence (not 2 × pingIntervalMs); one that answers pings is kept', async () => {
  const broker = new FakeBroker(1), win = new FakeWindow();
  // The silence the connection counts runs from the last frame it received (a pong here, up to ~1 s before the
  // freeze, by the phase of its keep-alive ticks against this test's sleep), not from the freeze.
  let lastFrameAt = 0;
  const transport: TransportFactory = (url, listener) => broker.transport(url, {
    open: () => listener.open(),
    message: (data) => { lastFrameAt = Date.now(); listener.message(data); },
    close: (code, reason) => listener.close(code, reason),
    error: (error) => listener.error(error),
  });
  const conn = connection(broker, win, { requestTimeoutMs: 60_000, pingIntervalMs: 15_000, transport });
  try {
    conn.open();
    await until('connected', () => conn.state === 'connected');
    // Alive but slow: the metadata answer is held for 2.5 s; pings are answered, so the session stays.
    broker.holdMetadata = true;
    const held = conn.request({ type: 'metadataRequest', topics: ['t'], allowAutoTopicCreation: 1 }).catch((e: RunnelError) => e);
    await new Promise((r) => setTimeout(r, 2_500));
    assert.equal(conn.state, 'connected', 'a broker that answers pings is not dropped');
    assert.equal(broker.dialed.length, 1);
    // Frozen: nothing answers, not even a ping.
    broker.frozen = true;
    const frozeAt = Date.now();
    await until('dropped', () => conn.state !== 'connected', 4_000);
    const droppedAt = Date.now();
    const ms = droppedAt - frozeAt, silentMs = droppedAt - lastFrameAt;
    // Dropped at twice BUSY_SILENCE_MS (1 s) of silence, not before: its ticks run every 500 ms.
    assert.ok(silentMs >= 2_000, `dropped after ${silentMs} ms of silence (its last frame ${frozeAt - lastFrameAt} ms before the freeze)`);
    assert.ok(ms < 3_500, `dropped ${ms} ms after the broker froze`);
    const e = await held;
    assert.ok(e instanceof Error, 'the waiting request fails (the caller retries on the next connection)');
    broker.frozen = false;
    broker.holdMetadata = false;
    await until('connected again', () => conn.state === 'connected', 5_000);
  } finally {
    conn.close();
  }
});
