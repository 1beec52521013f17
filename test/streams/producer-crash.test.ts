/**
 * Issue 14, "one mechanism": a Durable Streams producer's (Producer-Id,
 * Producer-Epoch, Producer-Seq) is the Runnel idempotent producer of the
 * stream's partition, carried in the batch its append writes. SIGKILL the
 * broker right after an idempotent append is acknowledged, and before the
 * restart put the stream's state file back as it was before that append (the
 * window a separate producer-state file had: records durable, state not);
 * a retry of the same tuple is still a 204 duplicate, the data is there once,
 * and sequence gaps and epoch fencing still hold across the restart.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cp, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnBroker, type BrokerChild } from '../broker/child.ts';

const producer = (epoch: number, seq: number, id = 'order-service-1') => ({ 'producer-id': id, 'producer-epoch': String(epoch), 'producer-seq': String(seq) });

test('an acknowledged idempotent append survives SIGKILL as producer state: the retry is a 204 duplicate, no doubled data', { timeout: 120_000 }, async () => {
  const dir = await mkdtemp(join(tmpdir(), 'runnel-ds-producer-crash-'));
  const dataDir = join(dir, 'data');
  let broker: BrokerChild | undefined = await spawnBroker(dataDir);
  try {
    const path = '/v1/stream/crash/orders';
    let url = `http://127.0.0.1:${broker.port}${path}`;
    const post = (headers: Record<string, string>, body?: string) => fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body });
    assert.equal((await fetch(url, { method: 'PUT', headers: { 'content-type': 'application/json' } })).status, 201);
    assert.equal((await post(producer(0, 0), '[{"n":1},{"n":2}]')).status, 200);
    // The stream's state as it is before the next append.
    await cp(join(dataDir, 'streams'), join(dir, 'streams-before'), { recursive: true });
    const acked = await post(producer(0, 1), '[{"n":3},{"n":4},{"n":5}]');
    assert.equal(acked.status, 200);
    assert.equal(acked.headers.get('producer-seq'), '1');
    broker.process.kill('SIGKILL');
    await broker.exited;
    await rm(join(dataDir, 'streams'), { recursive: true, force: true });
    await cp(join(dir, 'streams-before'), join(dataDir, 'streams'), { recursive: true });
    broker = await spawnBroker(dataDir);
    url = `http://127.0.0.1:${broker.port}${path}`;

    const retry = await post(producer(0, 1), '[{"n":3},{"n":4},{"n":5}]');
    assert.equal(retry.status, 204, 'the retry of the acknowledged append is a duplicate');
    assert.equal(retry.headers.get('producer-seq'), '1');
    const older = await post(producer(0, 0), '[{"n":1},{"n":2}]');
    assert.equal(older.status, 204);
    assert.equal(older.headers.get('producer-seq'), '1', 'a duplicate answers the highest accepted sequence');
    const read = async () => (await (await fetch(`${url}?offset=-1`)).json()) as { n: number }[];
    assert.deepEqual((await read()).map((m) => m.n), [1, 2, 3, 4, 5], 'every message once');

    const gap = await post(producer(0, 3), '[{"n":0}]');
    assert.equal(gap.status, 409);
    assert.equal(gap.headers.get('producer-expected-seq'), '2');
    assert.equal(gap.headers.get('producer-received-seq'), '3');
    assert.equal((await post(producer(0, 2), '{"n":6}')).status, 200);
    // A restarted producer bumps its epoch; the zombie of the old epoch is fenced with the current one.
    assert.equal((await post(producer(1, 0), '{"n":7}')).status, 200);
    const zombie = await post(producer(0, 3), '{"n":0}');
    assert.equal(zombie.status, 403);
    assert.equal(zombie.headers.get('producer-epoch'), '1');
    // Another Producer-Id of the same stream is its own producer: new, from sequence 0.
    const other = await post(producer(0, 5, 'order-service-2'), '{"n":0}');
    assert.equal(other.status, 409);
    assert.equal(other.headers.get('producer-expected-seq'), '0');
    assert.deepEqual((await read()).map((m) => m.n), [1, 2, 3, 4, 5, 6, 7]);

    // The tuple is in the records: the same answers after a second crash with no state file change at all.
    broker.process.kill('SIGKILL');
    await broker.exited;
    broker = await spawnBroker(dataDir);
    url = `http://127.0.0.1:${broker.port}${path}`;
    const again = await post(producer(1, 0), '{"n":7}');
    assert.equal(again.status, 204);
    assert.equal((await post(producer(0, 4), '{"n":0}')).status, 403);
    assert.deepEqual((await read()).map((m) => m.n), [1, 2, 3, 4, 5, 6, 7]);
  } finally {
    broker?.process.kill('SIGKILL');
    await broker?.exited;
    await rm(dir, { recursive: true, force: true });
  }
});
