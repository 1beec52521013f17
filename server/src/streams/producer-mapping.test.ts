import { test } from 'node:test';
import assert from 'node:assert/strict';
import { REQUEST_SEQUENCED_PRODUCER_ID_MIN } from '../log/producer-state.ts';
import { MAX_PRODUCER_EPOCH, MAX_PRODUCER_SEQ, newProducerKey, protocolStateOf, runnelProducerId, unmappable } from './producer-mapping.ts';

test('a Producer-Id maps to a request-sequenced Runnel id, per stream key, deterministic, a safe integer in [2^52, 2^53)', () => {
  const a = newProducerKey();
  const b = newProducerKey();
  assert.notEqual(a, b);
  const ids = new Set<number>();
  for (let i = 0; i < 2000; i++) {
    const id = runnelProducerId(a, `producer-${i}`);
    assert.ok(Number.isSafeInteger(id) && id >= REQUEST_SEQUENCED_PRODUCER_ID_MIN && id < 2 ** 53, String(id));
    assert.equal(runnelProducerId(a, `producer-${i}`), id);
    ids.add(id);
  }
  assert.equal(ids.size, 2000);
  assert.notEqual(runnelProducerId(a, 'p'), runnelProducerId(b, 'p'), 'another stream (key) maps the same Producer-Id elsewhere');
  assert.equal(runnelProducerId('00'.repeat(16), 'x'), runnelProducerId('00'.repeat(16), 'x'));
});

test('tuples beyond Runnel\'s int16 epoch / int32 sequence are refused, not wrapped; the protocol state is the entry\'s epoch and latest sequence', () => {
  assert.equal(unmappable({ id: 'p', epoch: MAX_PRODUCER_EPOCH, seq: MAX_PRODUCER_SEQ }), null);
  assert.match(unmappable({ id: 'p', epoch: MAX_PRODUCER_EPOCH + 1, seq: 0 }) ?? '', /int16/);
  assert.match(unmappable({ id: 'p', epoch: 0, seq: MAX_PRODUCER_SEQ + 1 }) ?? '', /int32/);
  assert.equal(protocolStateOf(undefined), undefined);
  assert.deepEqual(protocolStateOf({
    producerId: 2 ** 52, producerEpoch: 3, historyLength: 2,
    batches: [{ baseSequence: 4, lastSequence: 4, baseOffset: 0, lastOffset: 1 }, { baseSequence: 5, lastSequence: 5, baseOffset: 2, lastOffset: 9 }],
  }), { epoch: 3, lastSeq: 5 });
});
