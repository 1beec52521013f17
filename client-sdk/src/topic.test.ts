/**
 * ValueArena (topic.ts): values are written in bulk at `flush`, each a view
 * holding exactly its UTF-8 JSON; a text beyond ASCII is reported with the
 * bytes it takes beyond its length, and a written view never changes when
 * later values are written.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ValueArena, defineTopic, toTopic, type ValueTarget } from './topic.ts';

const topic = toTopic('t');
const text = (t: ValueTarget): string => new TextDecoder().decode(t.value!);

test('ASCII values: null until flush, then each its own JSON; earlier views unchanged by later flushes', () => {
  const arena = new ValueArena();
  const a: ValueTarget = { value: null }, b: ValueTarget = { value: null }, c: ValueTarget = { value: null };
  assert.equal(arena.encode(topic, { n: 1 }, a), 7);
  assert.equal(arena.encode(topic, 'x'.repeat(30), b), 32);
  assert.equal(a.value, null);
  const resized: number[] = [];
  arena.flush((_, extra) => resized.push(extra));
  assert.deepEqual([text(a), text(b)], ['{"n":1}', `"${'x'.repeat(30)}"`]);
  arena.encode(topic, [1, 2, 3], c);
  arena.flush((_, extra) => resized.push(extra));
  assert.deepEqual([text(a), text(b), text(c)], ['{"n":1}', `"${'x'.repeat(30)}"`, '[1,2,3]']);
  assert.deepEqual(resized, []);
  assert.equal(a.value!.length, 7);
});

test('a flush with text beyond ASCII: every value exact, the longer ones reported with their extra bytes', () => {
  const arena = new ValueArena();
  const targets = ['plain', 'café', '日本', '😀', 'end'].map((v) => {
    const t: ValueTarget = { value: null };
    arena.encode(topic, v, t);
    return t;
  });
  const resized = new Map<ValueTarget, number>();
  arena.flush((t, extra) => resized.set(t, extra));
  assert.deepEqual(targets.map(text), ['"plain"', '"café"', '"日本"', '"😀"', '"end"']);
  assert.deepEqual([...resized.values()], [1, 4, 2]);
  assert.equal(resized.get(targets[1]), 1);
});

test('many values in one flush (beyond a quarter slab) and a single large value', () => {
  const arena = new ValueArena();
  const targets = Array.from({ length: 2000 }, (_, i) => {
    const t: ValueTarget = { value: null };
    arena.encode(topic, { i, p: 'y'.repeat(i % 50) }, t);
    return t;
  });
  const big: ValueTarget = { value: null };
  assert.equal(arena.encode(topic, 'z'.repeat(100_000), big), 100_002);
  arena.flush(() => assert.fail('all ASCII'));
  targets.forEach((t, i) => assert.deepEqual(JSON.parse(text(t)), { i, p: 'y'.repeat(i % 50) }));
  assert.equal(text(big), `"${'z'.repeat(100_000)}"`);
  const small: ValueTarget = { value: null };
  arena.encode(topic, 1, small);
  arena.flush(() => assert.fail('all ASCII'));
  assert.equal(text(small), '1');
  assert.equal(text(big), `"${'z'.repeat(100_000)}"`); // untouched by the next flush
});

test('a schema that refuses a value throws SCHEMA_VALIDATION_FAILED and leaves nothing waiting', () => {
  const arena = new ValueArena();
  const positive = defineTopic('n', { parse: (v: unknown) => { if (typeof v !== 'number' || v <= 0) throw new Error('not positive'); return v; } });
  const t: ValueTarget = { value: null };
  assert.throws(() => arena.encode(positive, -1, t), { errorName: 'SCHEMA_VALIDATION_FAILED' } as object);
  arena.flush(() => assert.fail('nothing waits'));
  assert.equal(t.value, null);
});
