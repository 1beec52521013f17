/**
 * Issue 11 finding 1 (producer takeover, acknowledged-record loss), over real
 * sockets and HTTP: a second client that presents another client's producer
 * id must not get it, must not write under it, and the victim's own batch
 * must then be appended (not acknowledged as a "duplicate" of the
 * attacker's). Each test failed on the code before producer ids were bound
 * to their owner.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { ErrorTable, type BrokerFrame } from '@runnel/client/codec';
import { TestClient, makeBatch, startTestServer, type TestServer } from '../broker/harness.ts';

type InitOk = Extract<BrokerFrame, { type: 'initProducerOk' }>;

let server: TestServer;
before(async () => {
  server = await startTestServer();
  await server.broker.createTopic({ name: 'victim', partitions: 1, replicationFactor: 1 });
});
after(async () => {
  await server.stop();
});

const init = (c: TestClient, producerId: number, producerEpoch: number, producerSecret: string) =>
  c.request<InitOk>({ type: 'initProducer', requestId: 0, producerId, producerEpoch, producerSecret });

test('WebSocket: initProducer(victimId) without the secret gets a fresh id; a batch stamped with the victim id is refused; the victim appends', async () => {
  const victim = await TestClient.connect(server.wsUrl);
  const mine = await init(victim, -1, -1, '');
  assert.equal(mine.errorCode, 0);
  assert.ok(mine.producerSecret.length >= 16, 'a secret is issued with the id');

  const attacker = await TestClient.connect(server.wsUrl);
  const stolen = await init(attacker, mine.producerId, 7, '');
  assert.notEqual(stolen.producerId, mine.producerId, 'the id is not handed to someone without its secret');
  const guessed = await init(attacker, mine.producerId, 7, 'A'.repeat(mine.producerSecret.length));
  assert.notEqual(guessed.producerId, mine.producerId, 'nor with a wrong secret');
  const forged = await attacker.produce('victim', 0, makeBatch(['attacker'], { producerId: mine.producerId, producerEpoch: 0, baseSequence: 0 }));
  assert.equal(forged.errorCode, ErrorTable.UNKNOWN_PRODUCER_ID.code, 'a batch of an id this connection did not claim is refused');

  const own = await victim.produce('victim', 0, makeBatch(['victim'], { producerId: mine.producerId, producerEpoch: 0, baseSequence: 0 }));
  assert.equal(own.errorCode, 0);
  assert.equal(server.broker.describeTopic('victim').partitions[0].highWatermark, 1, "the victim's record is appended, nothing of the attacker's");
  const read = await server.broker.fetch('victim', 0, 0, 1 << 20);
  assert.ok(new TextDecoder().decode(read.batches).includes('victim'));
  assert.ok(!new TextDecoder().decode(read.batches).includes('attacker'));

  // A reload: the victim presents its stored id with its secret and keeps it, so resends stay de-duplicated.
  victim.close();
  const reloaded = await TestClient.connect(server.wsUrl);
  const again = await init(reloaded, mine.producerId, mine.producerEpoch, mine.producerSecret);
  assert.equal(again.producerId, mine.producerId);
  const resend = await reloaded.produce('victim', 0, makeBatch(['victim'], { producerId: mine.producerId, producerEpoch: 0, baseSequence: 0 }));
  assert.equal(resend.errorCode, 0);
  assert.equal(resend.baseOffset, 0, 'the resend is the original, de-duplicated');
  assert.equal(server.broker.describeTopic('victim').partitions[0].highWatermark, 1);
  reloaded.close();
  attacker.close();
});

test('WebSocket: an id the broker never issued is refused at produce', async () => {
  const c = await TestClient.connect(server.wsUrl);
  const ack = await c.produce('victim', 0, makeBatch(['x'], { producerId: 123_456_789, producerEpoch: 0, baseSequence: 5 }));
  assert.equal(ack.errorCode, ErrorTable.UNKNOWN_PRODUCER_ID.code);
  c.close();
});

test('HTTP binary produce: an idempotent batch needs its producer secret (header or query)', async () => {
  const owner = await TestClient.connect(server.wsUrl);
  const mine = await init(owner, -1, -1, '');
  owner.close();
  const url = `${server.url}/v1/topics/victim/records?partition=0`;
  const post = (batch: Uint8Array, headers: Record<string, string> = {}, query = '') =>
    fetch(url + query, { method: "POST", headers: { "content-type": "application/vnd.runnel.recordbatch", ...headers }, body: batch as Uint8Array<ArrayBuffer> });
  const stamped = (v: string, seq: number) => makeBatch([v], { producerId: mine.producerId, producerEpoch: 0, baseSequence: seq });
  const before = server.broker.describeTopic('victim').partitions[0].highWatermark;
  const anonymous = await post(stamped('http-attacker', 0));
  assert.equal(anonymous.status, 409);
  assert.equal(((await anonymous.json()) as { error: { code: string } }).error.code, 'UNKNOWN_PRODUCER_ID');
  assert.equal((await post(stamped('http-attacker', 0), { 'x-runnel-producer-secret': 'wrong' })).status, 409);
  assert.equal(server.broker.describeTopic('victim').partitions[0].highWatermark, before, 'nothing was written');
  assert.equal((await post(stamped('owner', 0), { 'x-runnel-producer-secret': mine.producerSecret })).status, 200);
  assert.equal((await post(stamped('owner2', 1), {}, `&producerSecret=${encodeURIComponent(mine.producerSecret)}`)).status, 200, 'a beacon carries it in the query');
  assert.equal((await post(makeBatch(['plain']))).status, 200, 'a non-idempotent batch needs no proof');
});
