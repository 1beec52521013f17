/**
 * Token refresh over the open socket (issue 11, "Tokens": the SDK's token
 * provider refreshes before expiry without reconnecting; an expired
 * connection is closed with a documented code). A real broker child with
 * `--auth-secret` (HS256), the Node SDK with `ws`, tokens minted by
 * `mintHs256Token` (what `runnel token create` does):
 *
 * 1. A provider minting 3-second tokens: one connection (no `disconnected`,
 *    one session id) for 8 s while producing and consuming, every record
 *    acknowledged and delivered, the token refreshed several times.
 * 2. A token that is not renewed: the broker closes the connection
 *    TOKEN_EXPIRED (4909); the client does not send the expired token again
 *    (a static string token stays disconnected), and reconnects once its
 *    provider returns a new one.
 * 3. A refresh the broker refuses (another subject): closed
 *    SASL_AUTHENTICATION_FAILED (4058), then reconnected with the
 *    provider's next token.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { WebSocket } from 'ws';
import { createClient, type ConsumerRecord, type RunnelClient, type RunnelError, type WebSocketConstructor } from '@runnel/client';
import { mintHs256Token } from '../../server/src/auth/mint.ts';
import { SecureBroker } from '../security/secure-broker.ts';

const WS = WebSocket as unknown as WebSocketConstructor;
const SECRET = randomBytes(48).toString('base64');
const TOPIC = 'refresh.events';
const GRANTS = { publish: ['refresh.*'], subscribe: ['refresh.*'] };

let broker: SecureBroker;
before(async () => {
  broker = await SecureBroker.start(['--auth-secret', SECRET]);
  const admin = await mint('admin', 60_000, { admin: true });
  const res = await fetch(`${broker.url}/v1/topics`, {
    method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${admin}` },
    body: JSON.stringify({ name: TOPIC, partitions: 2, replicationFactor: 1 }),
  });
  assert.ok(res.status === 200 || res.status === 201, `create topic: HTTP ${res.status} ${await res.text()}`);
});
after(async () => { await broker?.stop(); });

function mint(subject: string, ttlMs: number, grants: Parameters<typeof mintHs256Token>[0]['grants'] = GRANTS): Promise<string> {
  return mintHs256Token({ subject, grants, ttlMs, secret: SECRET, nowMs: Date.now() });
}

const until = async (what: string, cond: () => boolean, ms = 20_000): Promise<void> => {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}\n${broker.log()}`);
    await new Promise((r) => setTimeout(r, 20));
  }
};
const pause = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A client and what its connection did: sessions (one per helloOk), closes, error codes. */
function watched(token: string | (() => Promise<string>)): { client: RunnelClient; sessions: string[]; closes: number[]; errors: string[] } {
  const client = createClient({ urls: broker.wsUrl, WebSocket: WS, token, reconnect: { initialDelayMs: 50, maxDelayMs: 300 } });
  const out = { client, sessions: [] as string[], closes: [] as number[], errors: [] as string[] };
  const conn = client.internals().conn;
  conn.on('connected', (hello) => out.sessions.push(hello.sessionId));
  conn.on('disconnected', (e) => out.closes.push(e.code));
  client.on('error', (e: RunnelError) => out.errors.push(e.errorName));
  return out;
}

test('a provider of 3-second tokens: one connection for 8 s while producing and consuming, refreshed over the open socket', { timeout: 60_000 }, async () => {
  let minted = 0;
  const w = watched(async () => { minted++; return mint('u1', 3000); });
  const received: ConsumerRecord[] = [];
  try {
    const sub = w.client.subscribe(TOPIC, (r) => { received.push(r); }, { from: 'latest' });
    await sub.ready;
    const sends: Promise<unknown>[] = [];
    const startedAt = Date.now();
    for (let n = 0; Date.now() - startedAt < 8000; n++) {
      sends.push(w.client.producer.send(TOPIC, { n }));
      await pause(50);
    }
    const acks = await Promise.all(sends);
    await until('every record delivered', () => received.length >= acks.length);
    assert.deepEqual(w.closes, [], 'no disconnect');
    assert.equal(w.sessions.length, 1, `one session (${w.sessions.join(', ')})`);
    assert.deepEqual(w.errors, []);
    assert.ok(minted >= 4, `the token was refreshed (${minted} tokens minted in 8 s)`);
    assert.deepEqual(received.map((r) => (r.value as { n: number }).n).sort((a, b) => a - b), acks.map((_, n) => n));
    console.log(`# token refresh: ${minted} tokens of 3 s in ${Date.now() - startedAt} ms, session ${w.sessions[0]} kept, ${acks.length} records produced and consumed`);
  } finally {
    await w.client.close();
  }
});

test('a token that is not renewed: closed TOKEN_EXPIRED (4909), never sent again, reconnected once the provider gives a new one', { timeout: 60_000 }, async () => {
  let current = await mint('u2', 2000);
  const first = current;
  const w = watched(async () => current);
  const fixed = watched(first); // a static string token
  try {
    await until('both connected', () => w.sessions.length === 1 && fixed.sessions.length === 1);
    await until('the broker closes both at expiry', () => w.closes.length === 1 && fixed.closes.length === 1, 10_000);
    assert.deepEqual([w.closes, fixed.closes], [[4909], [4909]]);
    await pause(1500); // reconnect attempts meanwhile (backoff <= 300 ms): none may send the expired token
    assert.equal(w.sessions.length, 1, 'no session with the expired token');
    assert.equal(fixed.sessions.length, 1);
    assert.ok(w.errors.includes('TOKEN_EXPIRED') && fixed.errors.includes('TOKEN_EXPIRED'), `errors: ${w.errors} / ${fixed.errors}`);
    assert.notEqual(w.client.state, 'connected');
    current = await mint('u2', 60_000);
    await until('reconnected with the new token', () => w.sessions.length === 2);
    assert.notEqual(w.sessions[1], w.sessions[0]);
    assert.ok((await w.client.producer.send(TOPIC, { after: 'refresh' })).offset >= 0);
    assert.equal(fixed.sessions.length, 1, 'the static token never reconnects');
    console.log(`# token expiry: closed 4909, ${w.errors.filter((e) => e === 'TOKEN_EXPIRED').length} attempts held back with the expired token, reconnected with a new one; the static token stayed closed`);
  } finally {
    await w.client.close();
    await fixed.client.close();
  }
});

test('a refresh the broker refuses (another subject): closed SASL_AUTHENTICATION_FAILED (4058), reconnected with the next token', { timeout: 60_000 }, async () => {
  const tokens = [() => mint('u3', 3000), () => mint('someone-else', 3000)];
  const w = watched(async () => (tokens.shift() ?? (() => mint('u3', 60_000)))());
  try {
    await until('closed by the refused refresh', () => w.closes.length === 1, 10_000);
    assert.deepEqual(w.closes, [4058]);
    assert.ok(w.errors.includes('SASL_AUTHENTICATION_FAILED'), `errors: ${w.errors}`);
    await until('reconnected', () => w.sessions.length === 2);
    assert.ok((await w.client.producer.send(TOPIC, { after: 'refused refresh' })).offset >= 0);
  } finally {
    await w.client.close();
  }
});
