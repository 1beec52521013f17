/**
 * Group consumer against the in-process fake broker's minimal coordinator
 * (issue 12, found on the real cluster; test/cluster/groups-failover.test.ts
 * is the real-process version). Each test fails with the SDK before its fix:
 * - the member's own broker is lost: the 'disconnected' handler revokes its
 *   partitions (their unsubscribe used to be written to the lost transport: a
 *   TypeError escaping as an unhandled rejection); it rejoins on the next
 *   broker and resumes from the committed offsets, nothing handled twice;
 * - an offsetFetch refused retryably (a coordinator moving) is retried with
 *   backoff instead of stopping the member for good; a fatal refusal still
 *   stops it;
 * - a commit refused UNKNOWN_MEMBER_ID (a new coordinator that never knew the
 *   member) makes it rejoin at once, not after a heartbeat's answer; the
 *   record it handled is handled again and committed (at-least-once).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createClient, type RunnelClient } from './client.ts';
import type { RunnelError } from './codec/error-codes.ts';
import { FakeBroker } from './fake-broker.ts';
import { createGroupConsumer, type GroupConsumer } from './group-consumer.ts';
import { seededRandom } from './reconnect-policy.ts';

const URLS = ['ws://a/v1/ws', 'ws://b/v1/ws'];

function client(broker: FakeBroker): RunnelClient {
  return createClient({ urls: URLS, transport: broker.transport, random: seededRandom(3), beacon: false, reconnect: { initialDelayMs: 10, maxDelayMs: 50 }, limits: { lingerMs: 1 } });
}

const until = async (what: string, cond: () => boolean, ms = 20_000): Promise<void> => {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
};

/** Collects the process's unhandled rejections while `body` runs (the SDK must never leave one). */
async function noUnhandledRejections(body: () => Promise<void>): Promise<void> {
  const escaped: unknown[] = [];
  const onRejection = (reason: unknown): void => { escaped.push(reason); };
  process.on('unhandledRejection', onRejection);
  try {
    await body();
    await new Promise((r) => setTimeout(r, 20)); // let late rejections surface
  } finally {
    process.off('unhandledRejection', onRejection);
  }
  assert.deepEqual(escaped.map(String), [], 'unhandled rejections escaped the SDK');
}

function committedOffsets(broker: FakeBroker, group: string): Map<string, number> {
  return new Map([...broker.group(group).offsets].map(([k, o]) => [k, o.offset]));
}

async function produce(c: RunnelClient, from: number, to: number, partitions = 2): Promise<void> {
  await Promise.all(Array.from({ length: to - from }, (_, i) => c.producer.send('t', { n: from + i }, { partition: (from + i) % partitions })));
}

test('the member\'s broker is lost: no unhandled rejection; it rejoins on the next broker and resumes from the committed offsets', { timeout: 30_000 }, async () => {
  const broker = new FakeBroker(2);
  broker.createTopic('t', 2);
  const c = client(broker);
  let consumer: GroupConsumer<{ n: number }> | undefined;
  try {
    await noUnhandledRejections(async () => {
      const handled: string[] = [];
      const failures: unknown[] = [];
      const revoked: string[] = [];
      consumer = createGroupConsumer<{ n: number }>(c, { group: 'g', topics: ['t'], reset: 'earliest', handler: (r) => { handled.push(`${r.partition}/${r.offset}`); } });
      consumer.closed.catch((e: unknown) => failures.push(e));
      consumer.on('rebalance', (e) => revoked.push(...e.revoked.map((tp) => `${tp.topic}/${tp.partition}`)));
      await consumer.ready;
      assert.equal(consumer.assignment.length, 2);
      await produce(c, 0, 20);
      await until('everything produced is committed', () => committedOffsets(broker, 'g').get('t/0') === 10 && committedOffsets(broker, 'g').get('t/1') === 10);
      const generation = consumer.generationId;

      broker.dropConnections();
      await until('rejoined with a new generation', () => consumer!.generationId > generation && consumer!.assignment.length === 2);
      assert.deepEqual(revoked.sort(), ['t/0', 't/1'], 'the lost membership revoked both partitions');
      await produce(c, 20, 30);
      await until('the records produced after the loss are committed', () => committedOffsets(broker, 'g').get('t/0') === 15 && committedOffsets(broker, 'g').get('t/1') === 15);
      assert.equal(new Set(handled).size, handled.length, `an offset was handled twice: ${handled}`);
      assert.equal(handled.length, 30);
      assert.deepEqual(failures, [], 'the group consumer gave up');
    });
  } finally {
    await consumer?.leave();
    await c.close();
  }
});

test('an offsetFetch refused retryably is retried with backoff: the member starts and consumes; a fatal refusal stops it', { timeout: 30_000 }, async () => {
  const broker = new FakeBroker(1);
  broker.createTopic('t', 1);
  const c = client(broker);
  const consumers: GroupConsumer<unknown>[] = [];
  try {
    await noUnhandledRejections(async () => {
      await produce(c, 0, 5, 1);
      broker.offsetFetchErrors = ['NOT_LEADER_OR_FOLLOWER', 'REQUEST_TIMED_OUT', 'CLUSTER_UNAVAILABLE'];
      const errors: RunnelError[] = [];
      const handled: number[] = [];
      const consumer = createGroupConsumer<unknown>(c, { group: 'g', topics: ['t'], reset: 'earliest', handler: (r) => { handled.push(r.offset); } });
      consumers.push(consumer);
      let gaveUp: unknown;
      consumer.closed.catch((e: unknown) => (gaveUp = e));
      consumer.on('error', (e) => errors.push(e));
      await consumer.ready;
      await until('the records are handled', () => handled.length === 5 || gaveUp !== undefined);
      assert.equal(gaveUp, undefined, 'the member stopped on a retryable offsetFetch refusal');
      assert.deepEqual(errors.map((e) => e.errorName), ['NOT_LEADER_OR_FOLLOWER', 'REQUEST_TIMED_OUT', 'CLUSTER_UNAVAILABLE'], 'each refusal is reported');
      assert.deepEqual(broker.offsetFetchErrors, []);

      broker.offsetFetchErrors = ['GROUP_AUTHORIZATION_FAILED'];
      const fatal = createGroupConsumer<unknown>(c, { group: 'h', topics: ['t'], handler: () => {} });
      consumers.push(fatal);
      await assert.rejects(fatal.closed, (e: RunnelError) => e.errorName === 'GROUP_AUTHORIZATION_FAILED');
    });
  } finally {
    for (const consumer of consumers) await consumer.leave();
    await c.close();
  }
});

test('a commit refused UNKNOWN_MEMBER_ID (the coordinator forgot the member) rejoins at once and commits again', { timeout: 30_000 }, async () => {
  const broker = new FakeBroker(1);
  broker.createTopic('t', 1);
  const c = client(broker);
  let consumer: GroupConsumer<unknown> | undefined;
  try {
    await noUnhandledRejections(async () => {
      const handled: number[] = [];
      // NB: heartbeats every 10 s: a rejoin within the test's wait comes from the refused commit, not from a heartbeat.
      consumer = createGroupConsumer<unknown>(c, { group: 'g', topics: ['t'], reset: 'earliest', sessionTimeoutMs: 30_000, heartbeatIntervalMs: 10_000, handler: (r) => { handled.push(r.offset); } });
      let gaveUp: unknown;
      consumer.closed.catch((e: unknown) => (gaveUp = e));
      await consumer.ready;
      await produce(c, 0, 3, 1);
      await until('committed', () => committedOffsets(broker, 'g').get('t/0') === 3);
      const before = consumer.memberId;
      broker.group('g').members.clear(); // a new coordinator: the group's members are gone, its offsets kept
      await produce(c, 3, 4, 1);
      await until('rejoined', () => consumer!.memberId !== before && consumer!.memberId !== '', 5_000);
      await until('the record is committed by the rejoined member', () => committedOffsets(broker, 'g').get('t/0') === 4);
      assert.deepEqual(handled.slice(0, 4), [0, 1, 2, 3]);
      assert.ok(handled.slice(4).every((o) => o === 3), `only the uncommitted record is handled again: ${handled}`);
      assert.equal(gaveUp, undefined);
    });
  } finally {
    await consumer?.leave();
    await c.close();
  }
});
