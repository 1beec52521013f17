/**
 * A produce refused with a non-retryable code (issue 12, fault suite seeds
 * 1071, 1033, 1075: E "acknowledged but never written"; 1029: C "duplicates
 * after a whole-cluster restart"). The refusal says only that THIS attempt was
 * not appended: an earlier attempt whose ack was lost (a whole-cluster SIGKILL)
 * may be in the log. Moving the later batches down onto the refused batch's
 * sequences then made the broker answer the next batch as a duplicate of the
 * refused one (acknowledged at its offsets, never written), and took the
 * "may be in the log" mark off batches that were (a later new producer id
 * wrote them twice).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Connection } from './connection.ts';
import { FakeBroker } from './fake-broker.ts';
import { validateClientLimits } from './limits.ts';
import { memoryStorage } from './memory-storage.ts';
import { Producer } from './producer.ts';
import { seededRandom } from './reconnect-policy.ts';
import { decodeRecordBatch } from './codec/record-batch.ts';
import type { ErrorName } from './codec/error-codes.ts';
import type { Storage } from './storage.ts';

function start(broker: FakeBroker, storage: Storage, limits = {}) {
  const errors: unknown[] = [];
  const conn = new Connection({ urls: ['fake://'], transport: broker.transport, clientId: 't', random: seededRandom(1), reconnect: { initialDelayMs: 5, maxDelayMs: 20 } });
  const producer = new Producer(conn, storage.outbox, validateClientLimits({ lingerMs: 0, maxBatchRecords: 1, ...limits }), seededRandom(2), (e) => errors.push(e));
  conn.open();
  return { conn, producer, errors, close: () => { producer.close(); conn.close(); } };
}

/** [offset, n, producerId, baseSequence] of every stored batch of t/0 (one record each). */
function stored(broker: FakeBroker): [number, number, number, number][] {
  return broker.batches('t', 0).map((b) => {
    const d = decodeRecordBatch(b.bytes);
    assert.ok(d.ok);
    const n = JSON.parse(new TextDecoder().decode(d.value.records[0].value!)).n as number;
    return [b.baseOffset, n, d.value.header.producerId, d.value.header.baseSequence];
  });
}

const until = async (what: string, cond: () => boolean, ms = 10_000): Promise<void> => {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
};

for (const refusal of ['TOPIC_AUTHORIZATION_FAILED', 'UNKNOWN_SERVER_ERROR'] satisfies ErrorName[]) {
  test(`a batch written with its ack lost, then refused ${refusal} on the resend: the next batch keeps its own sequence and is written, not acknowledged as a duplicate of it (seed 1071)`, { timeout: 30_000 }, async () => {
    const broker = new FakeBroker(1);
    const c = start(broker, memoryStorage());
    try {
      assert.equal((await c.producer.send('t', { n: 0 }, { partition: 0 })).offset, 0);
      broker.loseAcks = true;
      const maybeWritten = c.producer.send('t', { n: 1 }, { partition: 0 });
      maybeWritten.catch(() => {});
      await until('batch 1 written, its ack lost', () => broker.batches('t', 0).length === 2);
      broker.refuseConnections = true; // the whole cluster is down
      broker.dropConnections();
      await until('disconnected', () => c.conn.state !== 'connected');
      const next = c.producer.send('t', { n: 2 }, { partition: 0 });
      await next.queued;
      await until('batch 2 frozen while disconnected', () => c.producer.frozenBatches().length === 2);
      broker.loseAcks = false;
      broker.produceErrors = [refusal]; // the restarted broker refuses the resend of batch 1
      broker.refuseConnections = false;
      await assert.rejects(maybeWritten, (e: any) => e.errorName === refusal);
      const ack = await next;
      assert.deepEqual(stored(broker).map(([offset, n]) => [offset, n]), [[0, 0], [1, 1], [2, 2]], 'record 2 written once, after record 1');
      assert.equal(ack.offset, 2, 'record 2 acknowledged at its own offset (not at record 1\'s)');
      const ids = new Set(stored(broker).map(([, , id]) => id));
      assert.equal(ids.size, 1, 'one producer id throughout');
    } finally {
      c.close();
    }
  });
}

test('batches written with their acks lost, the first refused on the resend: no later batch is re-stamped and written again (seed 1029)', { timeout: 30_000 }, async () => {
  const broker = new FakeBroker(1);
  const c = start(broker, memoryStorage());
  try {
    assert.equal((await c.producer.send('t', { n: 0 }, { partition: 0 })).offset, 0);
    broker.loseAcks = true;
    const sends = [1, 2, 3].map((n) => c.producer.send('t', { n }, { partition: 0 }));
    for (const s of sends) s.catch(() => {});
    await until('batches 1-3 written, their acks lost', () => broker.batches('t', 0).length === 4);
    broker.refuseConnections = true;
    broker.dropConnections();
    await until('disconnected', () => c.conn.state !== 'connected');
    broker.loseAcks = false;
    broker.produceErrors = ['TOPIC_AUTHORIZATION_FAILED'];
    broker.refuseConnections = false;
    await assert.rejects(sends[0], (e: any) => e.errorName === 'TOPIC_AUTHORIZATION_FAILED');
    const acks = await Promise.all(sends.slice(1));
    assert.deepEqual(acks.map((a) => a.offset), [2, 3], 'records 2 and 3 acknowledged at their offsets');
    assert.deepEqual(stored(broker).map(([, n]) => n), [0, 1, 2, 3], 'nothing written twice');
    await until('outbox drained', () => c.producer.outboxSize.records === 0);
  } finally {
    c.close();
  }
});

test('a first send refused (never in the log): the later never-sent batch moves down onto its sequence, same producer id', { timeout: 30_000 }, async () => {
  const broker = new FakeBroker(1);
  const c = start(broker, memoryStorage());
  try {
    assert.equal((await c.producer.send('t', { n: 0 }, { partition: 0 })).offset, 0);
    broker.refuseConnections = true;
    broker.dropConnections();
    await until('disconnected', () => c.conn.state !== 'connected');
    const refused = c.producer.send('t', { n: 1 }, { partition: 0 });
    refused.catch(() => {});
    const next = c.producer.send('t', { n: 2 }, { partition: 0 });
    await until('both frozen while disconnected', () => c.producer.frozenBatches().length === 2);
    broker.produceErrors = ['TOPIC_AUTHORIZATION_FAILED'];
    broker.refuseConnections = false;
    await assert.rejects(refused, (e: any) => e.errorName === 'TOPIC_AUTHORIZATION_FAILED');
    assert.equal((await next).offset, 1);
    const batches = stored(broker);
    assert.deepEqual(batches.map(([, n]) => n), [0, 2]);
    assert.equal(batches[1][3], 1, 'record 2 took the refused batch\'s sequence');
    assert.equal(new Set(batches.map(([, , id]) => id)).size, 1, 'no new producer id');
  } finally {
    c.close();
  }
});

test('a batch sent before but never written, refused on the resend: the next batch, answered OUT_OF_ORDER at the head, goes out under a new id, written once', { timeout: 30_000 }, async () => {
  const broker = new FakeBroker(1);
  const c = start(broker, memoryStorage());
  try {
    assert.equal((await c.producer.send('t', { n: 0 }, { partition: 0 })).offset, 0);
    broker.holdAcks = true; // received, neither written nor answered
    const refused = c.producer.send('t', { n: 1 }, { partition: 0 });
    refused.catch(() => {});
    await until('batch 1 sent', () => broker.producesReceived === 2);
    broker.refuseConnections = true;
    broker.dropConnections();
    await until('disconnected', () => c.conn.state !== 'connected');
    const next = c.producer.send('t', { n: 2 }, { partition: 0 });
    await until('batch 2 frozen while disconnected', () => c.producer.frozenBatches().length === 2);
    broker.holdAcks = false;
    broker.produceErrors = ['TOPIC_AUTHORIZATION_FAILED'];
    broker.refuseConnections = false;
    await assert.rejects(refused, (e: any) => e.errorName === 'TOPIC_AUTHORIZATION_FAILED');
    assert.equal((await next).offset, 1);
    const batches = stored(broker);
    assert.deepEqual(batches.map(([, n]) => n), [0, 2], 'record 2 once');
    assert.notEqual(batches[1][2], batches[0][2], 'the gap was closed under a new producer id');
    assert.ok(c.errors.some((e: any) => e.errorName === 'OUT_OF_ORDER_SEQUENCE_NUMBER'));
  } finally {
    c.close();
  }
});
