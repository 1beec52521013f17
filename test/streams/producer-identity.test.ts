/**
 * Issue 14: a Durable Streams producer's state is the stream partition's
 * Runnel idempotent producer, so no other client may reach it. Knowing the
 * victim's Runnel producer id exactly (computed here from the stream's key on
 * disk, which no client can read), an HTTP client producing a batch with that
 * id straight to the stream's topic is refused UNKNOWN_PRODUCER_ID (ids are
 * bound to the subject they were issued to), and another Producer-Id on the
 * same stream is a producer of its own: the victim is neither fenced nor has
 * its sequence moved.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeRecordBatch } from '@runnel/client/codec';
import { runnelProducerId } from '../../server/src/streams/producer-mapping.ts';
import { spawnBroker } from '../broker/child.ts';

const producer = (id: string, epoch: number, seq: number) => ({ 'content-type': 'application/json', 'producer-id': id, 'producer-epoch': String(epoch), 'producer-seq': String(seq) });

test('no client reaches a Durable Streams producer\'s state except through its own Producer-Id', { timeout: 60_000 }, async () => {
  const dir = await mkdtemp(join(tmpdir(), 'runnel-ds-identity-'));
  const broker = await spawnBroker(join(dir, 'data'));
  try {
    const base = `http://127.0.0.1:${broker.port}`;
    const url = `${base}/v1/stream/identity/victim`;
    assert.equal((await fetch(url, { method: 'PUT', headers: { 'content-type': 'application/json' } })).status, 201);
    assert.equal((await fetch(url, { method: 'POST', headers: producer('victim', 0, 0), body: '{"n":0}' })).status, 200);
    const topic = (await fetch(url, { method: 'HEAD' })).headers.get('runnel-topic')!;
    const [file] = await readdir(join(dir, 'data', 'streams'));
    const { producerKey } = JSON.parse(await readFile(join(dir, 'data', 'streams', file), 'utf8')) as { producerKey: string };
    const victimId = runnelProducerId(producerKey, 'victim');

    // A newer epoch of the victim's id, sent as a Runnel batch: would fence the victim if it were accepted.
    for (const secret of ['', 'guessed-secret']) {
      const batch = encodeRecordBatch({ baseTimestamp: Date.now(), producerId: victimId, producerEpoch: 7, baseSequence: 0, records: [{ value: new TextEncoder().encode('{"n":-1}') }] });
      const res = await fetch(`${base}/v1/topics/${topic}/records?partition=0`, { method: 'POST', headers: { 'content-type': 'application/vnd.runnel.recordbatch', 'x-runnel-producer-secret': secret }, body: new Uint8Array(batch) });
      const body = await res.json() as { error?: { code: string } };
      assert.equal(body.error?.code, 'UNKNOWN_PRODUCER_ID', JSON.stringify(body));
    }
    // Another Producer-Id of the same stream, at a high epoch: its own state only.
    assert.equal((await fetch(url, { method: 'POST', headers: producer('attacker', 9, 0), body: '{"n":-2}' })).status, 200);

    const next = await fetch(url, { method: 'POST', headers: producer('victim', 0, 1), body: '{"n":1}' });
    assert.equal(next.status, 200, 'the victim is not fenced, its sequence not moved');
    const all = await (await fetch(`${url}?offset=-1`)).json() as { n: number }[];
    assert.deepEqual(all.map((m) => m.n), [0, -2, 1]);
  } finally {
    broker.process.kill('SIGKILL');
    await broker.exited;
    await rm(dir, { recursive: true, force: true });
  }
});
