import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ACTIVITY_TYPES, ActivityEvent } from '../activity.ts';
import { productForPath } from '../shop/catalog.ts';
import { TrafficSimulation } from './simulation.ts';

test('every simulated event passes the activity schema, and every type occurs', () => {
  const simulation = new TrafficSimulation({ users: 50, seed: 7, userPrefix: 'sim' });
  const seen = new Set<string>();
  for (let i = 0; i < 20_000; i++) {
    const event = simulation.next(1_700_000_000_000 + i);
    const parsed = ActivityEvent.safeParse(event);
    assert.ok(parsed.success, `event ${i} failed the schema: ${JSON.stringify(event)}`);
    seen.add(event.type);
  }
  assert.deepEqual([...seen].sort(), [...ACTIVITY_TYPES].sort());
});

test('a seed reproduces the run; users start with a page view and add to cart only on product pages', () => {
  const run = (seed: number) => {
    const simulation = new TrafficSimulation({ users: 5, seed, userPrefix: 'u' });
    return Array.from({ length: 500 }, (_, i) => simulation.next(i));
  };
  assert.deepEqual(run(42), run(42));
  assert.notDeepEqual(run(42), run(43));
  const firstByUser = new Map<string, ActivityEvent>();
  for (const event of run(42)) {
    if (!firstByUser.has(event.userId)) firstByUser.set(event.userId, event);
    if (event.type === 'add_to_cart') assert.equal(productForPath(event.path)?.id, event.productId);
  }
  for (const event of firstByUser.values()) assert.equal(event.type, 'page_view');
});

test('rejects a non-positive user count', () => {
  assert.throws(() => new TrafficSimulation({ users: 0, seed: 1, userPrefix: 'u' }), RangeError);
});
