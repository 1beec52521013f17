/**
 * Must show 2 of issue 14 (Node part): @durable-streams/client against a real
 * broker process: write, read, store the offset, SIGKILL the broker, restart
 * it on the same data dir, resume from the stored offset — exactly the
 * records after it, no gap, no duplicate. Then the same records through
 * Runnel's HTTP API (the stream's topic, `Runnel-Topic`), and a record
 * produced through Runnel's API read back by the Durable Streams client.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DurableStream, stream } from '@durable-streams/client';
import { spawnBroker, type BrokerChild } from '../broker/child.ts';

type Msg = { i: number };

async function readAll(url: string, offset: string): Promise<{ items: Msg[]; offset: string }> {
  const res = await stream<Msg>({ url, offset, live: false, json: true });
  const items = await res.json();
  return { items, offset: res.offset };
}

test('@durable-streams/client: resume from a stored offset across a broker SIGKILL, cross-read with the Runnel HTTP API', { timeout: 120_000 }, async () => {
  const dir = await mkdtemp(join(tmpdir(), 'runnel-ds-restart-'));
  const dataDir = join(dir, 'data');
  let broker: BrokerChild | undefined = await spawnBroker(dataDir);
  try {
    const path = `/v1/stream/restart/${process.pid}`;
    let base = `http://127.0.0.1:${broker.port}`;
    const handle = await DurableStream.create({ url: base + path, contentType: 'application/json' });
    for (let i = 0; i < 40; i++) await handle.append(JSON.stringify({ i }));
    const first = await readAll(base + path, '-1');
    assert.deepEqual(first.items.map((m) => m.i), Array.from({ length: 40 }, (_, i) => i));
    const stored = first.offset;

    // Acknowledged appends after the stored offset, then a crash with no clean shutdown.
    for (let i = 40; i < 70; i++) await handle.append(JSON.stringify({ i }));
    broker.process.kill('SIGKILL');
    await broker.exited;
    broker = await spawnBroker(dataDir);
    base = `http://127.0.0.1:${broker.port}`;

    const resumed = await readAll(base + path, stored);
    assert.deepEqual(resumed.items.map((m) => m.i), Array.from({ length: 30 }, (_, i) => 40 + i), 'no gap, no duplicate after the stored offset');
    const again = await readAll(base + path, resumed.offset);
    assert.deepEqual(again.items, []);

    // The stream is a Runnel topic: read it with the HTTP API, then produce to it there.
    const head = await fetch(base + path, { method: 'HEAD' });
    const topic = head.headers.get('runnel-topic');
    assert.ok(topic);
    const records = (await (await fetch(`${base}/v1/topics/${topic}/partitions/0/records?offset=0&maxRecords=100`)).json()) as { records: { offset: number; value: Msg }[] };
    assert.deepEqual(records.records.map((r) => r.value.i), Array.from({ length: 70 }, (_, i) => i));
    const produced = await fetch(`${base}/v1/topics/${topic}/records`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ records: [{ value: { i: 70 } }, { value: { i: 71 } }] }),
    });
    assert.equal(produced.status, 200, await produced.clone().text());
    const fromRunnel = await readAll(base + path, resumed.offset);
    assert.deepEqual(fromRunnel.items.map((m) => m.i), [70, 71]);
  } finally {
    broker?.process.kill('SIGKILL');
    await broker?.exited;
    await rm(dir, { recursive: true, force: true });
  }
});
