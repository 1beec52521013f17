/**
 * Type tests for typed topics (STYLE 5): they pin what `defineTopic` infers
 * from zod schemas — `send` takes the schema's input type, handlers and
 * `consume` get its output type, wrong values do not compile. They are
 * checked by `tsc -b` (test/project/typecheck.test.ts): an `Equal` that
 * turns false or a `@ts-expect-error` that no longer finds an error fails
 * `npm test`. The runtime test proves the same input/output split at run
 * time, through the real value codec.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as z from 'zod';
import * as zm from 'zod/mini';
import type { RunnelClient } from './client.ts';
import type { ConsumerRecord } from './consumer-record.ts';
import type { ContextFor, HandlerTransaction } from './consumer.ts';
import { decodeValue, defineTopic, encodeValue } from './topic.ts';

type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends (<T>() => T extends B ? 1 : 2) ? true : false;
const is = <T extends true>(): T => true as T;

const pageViews = defineTopic('page-views', z.object({ path: z.string(), userId: z.string() }));
/** Input differs from output: producers send a numeric string, consumers get a number. */
const amounts = defineTopic('amounts', z.string().regex(/^\d+$/).transform(Number));
/** zod/mini (the demo's choice) infers the same way. */
const clicks = defineTopic('clicks', zm.object({ x: zm.number(), y: zm.number() }));

/** Never called: compiled only. */
export async function typeChecks(client: RunnelClient, signal: AbortSignal): Promise<void> {
  const sent = await client.producer.send(pageViews, { path: '/', userId: 'u1' }, { key: 'u1' });
  is<Equal<typeof sent.offset, number>>();
  // @ts-expect-error a required field is missing
  void client.producer.send(pageViews, { path: '/' });
  // @ts-expect-error a field has the wrong type
  void client.producer.send(pageViews, { path: '/', userId: 1 });
  void client.producer.send(amounts, '42');
  // @ts-expect-error producers send the schema's input (a string), not its output
  void client.producer.send(amounts, 42);
  // @ts-expect-error zod/mini schemas are enforced too
  void client.producer.send(clicks, { x: 1 });
  // A bare topic name takes any JSON value.
  void client.producer.send('raw', { anything: [1, 'two'] });

  client.subscribe(pageViews, (record) => {
    is<Equal<typeof record, ConsumerRecord<{ path: string; userId: string }>>>();
  });
  client.subscribe(amounts, (record) => {
    is<Equal<typeof record.value, number>>();
  });
  client.subscribeBatches(clicks, (records) => {
    is<Equal<typeof records, ConsumerRecord<{ x: number; y: number }>[]>>();
  });
  client.subscribe('raw', (record) => {
    is<Equal<typeof record.value, unknown>>();
  });
  // ctx.tx: typed over the stores `transactional` names (plus Runnel's offsets), undefined without it.
  client.subscribe(pageViews, async (record, { tx }) => {
    is<Equal<typeof tx, HandlerTransaction<'journal'>>>();
    await tx.objectStore('journal').put(record.value.path, record.offset);
    // @ts-expect-error a store the transaction was not opened over
    void tx.objectStore('other');
  }, { transactional: { stores: ['journal'] } });
  client.subscribe(pageViews, (_record, { tx }) => {
    is<Equal<typeof tx, undefined>>();
  });
  client.subscribeBatches(clicks, (_records, { tx }) => {
    is<Equal<typeof tx, HandlerTransaction<'a' | 'b'>>>();
  }, { transactional: { stores: ['a', 'b'] } });
  is<Equal<ContextFor<{ transactional: { stores: ['s'] } }>['tx'], HandlerTransaction<'s'>>>();
  is<Equal<ContextFor<{ from: 'earliest' }>['tx'], undefined>>();
  for await (const record of client.consume(amounts, { signal })) {
    is<Equal<typeof record.value, number>>();
  }
}

test('a topic whose schema transforms: the producer encodes the input, the consumer decodes the output', () => {
  const bytes = encodeValue(amounts, '42');
  assert.equal(new TextDecoder().decode(bytes), '"42"');
  assert.equal(decodeValue(amounts, bytes), 42);
  assert.throws(() => encodeValue(amounts, 'forty-two'), { errorName: 'SCHEMA_VALIDATION_FAILED' } as object);
  assert.deepEqual(decodeValue(clicks, new TextEncoder().encode('{"x":1,"y":2}')), { x: 1, y: 2 });
  assert.throws(() => decodeValue(pageViews, new TextEncoder().encode('{"path":"/"}')), { errorName: 'SCHEMA_VALIDATION_FAILED' } as object);
});
