import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { HandleLru } from './handle-lru.ts';

type Op = { kind: 'pin' | 'unpin' | 'remove' | 'shed'; key: number };

const ops = fc.array(fc.record({ kind: fc.constantFrom('pin', 'pin', 'pin', 'unpin', 'unpin', 'remove', 'shed'), key: fc.integer({ min: 0, max: 11 }) }), { maxLength: 300 });

test('property: never more than maxOpen open unless all are pinned; pinned keys are never evicted (nor shed); opens only what is closed', () => {
  fc.assert(fc.property(fc.integer({ min: 1, max: 6 }), ops, (maxOpen, sequence: Op[]) => {
    const lru = new HandleLru<number>(maxOpen);
    const pins = new Map<number, number>(); // model: pins held by callers
    const open = new Set<number>(); // model: handles the driver holds open
    const evict = (keys: number[]) => {
      for (const k of keys) {
        assert.ok(!pins.get(k), `pinned key ${k} evicted`);
        assert.ok(open.delete(k), `evicted ${k} that was not open`);
      }
    };
    for (const op of sequence) {
      const held = pins.get(op.key) ?? 0;
      if (op.kind === 'pin') {
        const effects = lru.pin(op.key);
        evict(effects.evict);
        assert.equal(effects.mustOpen, !open.has(op.key), 'mustOpen exactly when not open');
        open.add(op.key);
        pins.set(op.key, held + 1);
      } else if (op.kind === 'unpin') {
        if (held === 0) continue;
        pins.set(op.key, held - 1);
        evict(lru.unpin(op.key));
      } else if (op.kind === 'shed') {
        const idle = [...open].filter((k) => !pins.get(k));
        const shed = lru.shedIdle();
        assert.deepEqual([...shed].sort(), idle.sort(), 'shedIdle returns exactly the unpinned open keys');
        evict(shed);
      } else {
        assert.equal(lru.remove(op.key), open.has(op.key));
        open.delete(op.key);
        pins.delete(op.key);
      }
      const pinnedKeys = [...pins.values()].filter((n) => n > 0).length;
      assert.equal(lru.openCount, open.size, 'core and model agree on what is open');
      assert.equal(lru.pinnedCount, pinnedKeys);
      assert.ok(lru.openCount <= maxOpen || pinnedKeys === lru.openCount, `${lru.openCount} open > ${maxOpen} with only ${pinnedKeys} pinned`);
      for (const [k, n] of pins) if (n > 0) assert.ok(lru.isPinned(k) && lru.isOpen(k), `pinned ${k} is open`);
    }
  }), { numRuns: 500 });
});

test('the least recently unpinned handle is closed first; excess over the limit closes when pins drop', () => {
  const lru = new HandleLru<string>(2);
  assert.deepEqual(lru.pin('a'), { mustOpen: true, evict: [] });
  assert.deepEqual(lru.pin('b'), { mustOpen: true, evict: [] });
  assert.deepEqual(lru.pin('c'), { mustOpen: true, evict: [] }, 'all pinned: over the limit rather than waiting');
  assert.equal(lru.openCount, 3);
  assert.deepEqual(lru.unpin('b'), ['b'], 'back to the limit as soon as a pin drops');
  assert.deepEqual(lru.unpin('a'), []);
  assert.deepEqual(lru.unpin('c'), []);
  assert.deepEqual(lru.pin('a'), { mustOpen: false, evict: [] }, 'still open: reused');
  lru.unpin('a');
  assert.deepEqual(lru.pin('d'), { mustOpen: true, evict: ['c'] }, 'c was unpinned before a was touched again');
  assert.throws(() => lru.unpin('c'), /not pinned/);
});
