/**
 * `@runnel/client/group` against a real broker process: three Node group
 * consumers share a 6-partition topic while it is produced; the partitions
 * are split without overlap; one member leaves mid-stream and its partitions
 * move; every produced offset is processed, and an offset is processed
 * twice only if no commit covering it had been acknowledged before the
 * second processing (at-least-once only for processed-but-uncommitted
 * records). A raw protocol member shows the broker's fencing that the SDK
 * relies on: a commit with a stale generation is rejected (22).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { WebSocket } from 'ws';
import { createClient, type RunnelClient, type WebSocketConstructor } from '@runnel/client';
import { createGroupConsumer, type GroupConsumer, type TopicPartition } from '@runnel/client/group';
import { PROTOCOL_VERSION, decodeFrame, encodeFrame, type BrokerFrame, type ClientFrame } from '@runnel/client/codec';
import { BrokerProcess } from '../e2e/harness/broker-process.ts';

const WS = WebSocket as unknown as WebSocketConstructor;
const until = async (cond: () => boolean, what: string, ms = 60_000): Promise<void> => {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const tp = (t: TopicPartition) => `${t.topic}/${t.partition}`;

async function createTopic(broker: BrokerProcess, name: string, partitions: number): Promise<void> {
  const res = await fetch(`${broker.url}/v1/topics`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name, partitions, replicationFactor: 1 }) });
  assert.ok(res.ok, `create topic: ${res.status}`);
}

/** Asserts the members' current assignments are disjoint and cover partitions 0..n-1 of `topic`. */
function assertSplit(members: GroupConsumer<unknown>[], topic: string, n: number): void {
  const all = members.flatMap((m) => m.assignment.map(tp));
  assert.equal(new Set(all).size, all.length, `overlapping assignments: ${all}`);
  assert.deepEqual(all.sort(), Array.from({ length: n }, (_, p) => `${topic}/${p}`).sort());
}

test('3 group consumers split 6 partitions; one leaves mid-stream; every offset processed, duplicates only past committed offsets', { timeout: 180_000 }, async () => {
  const broker = await BrokerProcess.start();
  const TOPIC = 'grp-orders', TOTAL = 3_000;
  const clients: RunnelClient[] = [];
  const newClient = () => { const c = createClient({ urls: broker.wsUrl, WebSocket: WS, beacon: false }); clients.push(c); return c; };
  let seq = 0;
  /** Every processing and every acknowledged commit, in one global order. */
  const processed: { key: string; p: number; offset: number; member: number; seq: number }[] = [];
  const commits: { p: number; offset: number; member: number; seq: number }[] = [];
  try {
    await createTopic(broker, TOPIC, 6);
    const aborts = [new AbortController(), new AbortController(), new AbortController()];
    const members = aborts.map((ac, member) => {
      const m = createGroupConsumer(newClient(), {
        group: 'billing', topics: [TOPIC], reset: 'earliest', sessionTimeoutMs: 5_000, signal: ac.signal,
        handler: async (rec) => {
          processed.push({ key: `${rec.partition}/${rec.offset}`, p: rec.partition, offset: rec.offset, member, seq: ++seq });
          if (rec.offset % 50 === 0) await sleep(1); // some handlers take a while
        },
      });
      m.on('commit', ({ offsets }) => { for (const o of offsets) commits.push({ p: o.partition, offset: o.offset, member, seq: ++seq }); });
      m.on('error', (e) => console.error(`member ${member}:`, e));
      return m;
    });
    await Promise.all(members.map((m) => m.ready));
    await until(() => members.every((m) => m.assignment.length === 2) && new Set(members.map((m) => m.generationId)).size === 1, 'a stable 3-way split');
    assertSplit(members, TOPIC, 6);

    const producer = newClient();
    const acked: Promise<{ partition: number; offset: number }>[] = [];
    for (let n = 0; n < TOTAL; n++) {
      acked.push(producer.producer.send(TOPIC, { n }, { key: `k${n}` }));
      if (n % 100 === 99) await sleep(10);
      if (n === TOTAL / 2) {
        await until(() => processed.some((r) => r.member === 2), 'member 2 processing');
        aborts[2].abort(); // leave: commit what it processed, then groupLeave
        await members[2].closed;
      }
    }
    const acks = await Promise.all(acked);
    const survivors = members.slice(0, 2);
    await until(() => survivors.every((m) => m.assignment.length === 3) && survivors[0].generationId === survivors[1].generationId, 'a 2-way split');
    assertSplit(survivors, TOPIC, 6);
    assert.deepEqual(members[2].assignment, []);

    const expected = new Set(acks.map((a) => `${a.partition}/${a.offset}`));
    assert.equal(expected.size, TOTAL);
    await until(() => new Set(processed.map((r) => r.key)).size >= TOTAL, `all ${TOTAL} offsets processed`);
    for (const k of new Set(processed.map((r) => r.key))) assert.ok(expected.has(k), `processed ${k} that was never produced`);

    // A second processing of (p, o) is allowed only if no commit covering o (offset > o) was acknowledged before it.
    const first = new Map<string, (typeof processed)[number]>();
    let duplicates = 0;
    for (const r of processed) {
      const earlier = first.get(r.key);
      if (!earlier) { first.set(r.key, r); continue; }
      duplicates++;
      const covering = commits.find((c) => c.p === r.p && c.offset > r.offset && c.seq < r.seq);
      assert.equal(covering, undefined, `${r.key} processed again by member ${r.member} after member ${covering?.member} committed ${covering?.offset}`);
      assert.notEqual(earlier.member, 2, `${r.key} was processed by the member that left (it committed before leaving)`);
    }
    console.log(`group-consumer: ${processed.length} processings of ${TOTAL} offsets, ${duplicates} duplicates (uncommitted at a rebalance), ${commits.length} committed offsets`);
    await Promise.all(survivors.map((m) => m.leave()));
  } catch (error) {
    console.error(broker.log());
    throw error;
  } finally {
    await Promise.all(clients.map((c) => c.close()));
    await broker.stop();
  }
});

/** A raw protocol session: send frames, await the next frame matching a predicate. */
async function rawSession(url: string): Promise<{ send(f: ClientFrame): void; next<F extends BrokerFrame>(match: (f: BrokerFrame) => f is F): Promise<F>; close(): void }> {
  const ws = new WebSocket(url);
  ws.binaryType = 'arraybuffer';
  const inbox: BrokerFrame[] = [];
  ws.on('message', (data: ArrayBuffer) => {
    const d = decodeFrame(new Uint8Array(data));
    if (d.ok) inbox.push(d.value as BrokerFrame);
  });
  await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject); });
  const send = (f: ClientFrame) => ws.send(encodeFrame(f));
  const next = async <F extends BrokerFrame>(match: (f: BrokerFrame) => f is F): Promise<F> => {
    let found: F | undefined;
    await until(() => { const i = inbox.findIndex(match); if (i >= 0) found = inbox.splice(i, 1)[0] as F; return found !== undefined; }, 'a frame', 10_000);
    return found!;
  };
  send({ type: 'hello', minVersion: PROTOCOL_VERSION, maxVersion: PROTOCOL_VERSION, clientId: 'raw', token: '' });
  await next((f): f is BrokerFrame => f.type === 'helloOk');
  return { send, next, close: () => ws.close() };
}

test('a commit with a stale generation is rejected (ILLEGAL_GENERATION); the current generation commits', { timeout: 120_000 }, async () => {
  const broker = await BrokerProcess.start();
  const TOPIC = 'grp-fence';
  const client = createClient({ urls: broker.wsUrl, WebSocket: WS, beacon: false });
  const raw = await rawSession(broker.wsUrl);
  try {
    await createTopic(broker, TOPIC, 2);
    const isAssignment = (f: BrokerFrame): f is Extract<BrokerFrame, { type: 'groupAssignment' }> => f.type === 'groupAssignment';
    const isAck = (f: BrokerFrame): f is Extract<BrokerFrame, { type: 'offsetCommitAck' }> => f.type === 'offsetCommitAck';
    raw.send({ type: 'groupJoin', requestId: 1, group: 'fence', memberId: '', topics: [TOPIC], sessionTimeoutMs: 30_000 });
    const joined = await raw.next(isAssignment);
    assert.equal(joined.errorCode, 0);
    assert.deepEqual(joined.assignments, [{ topic: TOPIC, partitions: [0, 1] }]);

    const sdkMember = createGroupConsumer(client, { group: 'fence', topics: [TOPIC], handler: () => {}, sessionTimeoutMs: 30_000 });
    await sdkMember.ready;
    const pushed = await raw.next(isAssignment); // the rebalance caused by the SDK member
    assert.ok(pushed.generationId > joined.generationId);
    assert.equal(sdkMember.generationId, pushed.generationId);
    const mine = pushed.assignments[0].partitions[0];
    const commit = (generationId: number, requestId: number) => raw.send({ type: 'offsetCommit', requestId, group: 'fence', generationId, memberId: joined.memberId, offsets: [{ topic: TOPIC, partition: mine, offset: 0, metadata: '' }] });
    commit(joined.generationId, 2);
    assert.equal((await raw.next(isAck)).errorCode, 22, 'stale generation must be ILLEGAL_GENERATION');
    commit(pushed.generationId, 3);
    assert.equal((await raw.next(isAck)).errorCode, 0, 'current generation commits');
    await sdkMember.leave();
  } catch (error) {
    console.error(broker.log());
    throw error;
  } finally {
    raw.close();
    await client.close();
    await broker.stop();
  }
});
