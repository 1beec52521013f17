import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import type { ActivityEvent } from '../activity.ts';
import { ActivityAggregates, OTHER_PAGES, aggregateLimits } from './aggregates.ts';

const T0 = 1_700_000_000_000;

function pageView(userId: string, path: string, ts = T0): ActivityEvent {
  return { type: 'page_view', userId, sessionId: 's', ts, path, title: 't', referrer: '' };
}

test('counts each offset once: redelivered and replayed records are ignored', () => {
  fc.assert(fc.property(
    fc.array(fc.tuple(fc.integer({ min: 0, max: 2 }), fc.integer({ min: 0, max: 40 })), { maxLength: 200 }),
    (deliveries) => {
      const aggregates = new ActivityAggregates();
      // A consumer sees each partition's offsets in increasing order, possibly repeating an earlier range.
      const byPartition = new Map<number, number[]>();
      for (const [partition, offset] of deliveries) byPartition.set(partition, [...(byPartition.get(partition) ?? []), offset]);
      let expected = 0;
      for (const [partition, offsets] of byPartition) {
        let next = -1;
        for (const offset of offsets) {
          const counted = aggregates.apply(partition, offset, pageView('u', '/a'));
          assert.equal(counted, offset > next);
          if (counted) {
            expected++;
            next = offset;
          }
        }
      }
      assert.equal(aggregates.totalEvents, expected);
      assert.equal(aggregates.byType.page_view, expected);
    },
  ));
});

test('a snapshot restores numbers and positions, and keeps refusing counted offsets', () => {
  const aggregates = new ActivityAggregates(T0 - 5000, 'topic-id-1');
  for (let offset = 0; offset < 10; offset++) aggregates.apply(offset % 3, offset, pageView(`u${offset % 4}`, `/p${offset % 2}`, T0 + offset * 400));
  aggregates.apply(1, 10, undefined);
  const restored = ActivityAggregates.fromSnapshot(JSON.parse(JSON.stringify(aggregates.snapshot())));
  assert.deepEqual(restored.snapshot(), aggregates.snapshot());
  assert.equal(restored.invalidRecords, 1);
  assert.equal(restored.apply(0, 9, pageView('u', '/p0')), false, 'offset 9 of partition 0 was counted before the snapshot');
  assert.equal(restored.apply(0, 10, pageView('u', '/p0')), true);
  assert.equal(restored.totalEvents, 11);
});

test('top pages, event types and the zero-filled rate series', () => {
  const aggregates = new ActivityAggregates();
  let offset = 0;
  for (const [path, n] of [['/a', 3], ['/b', 5], ['/c', 1]] as const) {
    for (let i = 0; i < n; i++) aggregates.apply(0, offset++, pageView('u', path, T0 + 2000));
  }
  aggregates.apply(0, offset++, { type: 'click', userId: 'u', sessionId: 's', ts: T0, path: '/a', target: 'x' });
  assert.deepEqual(aggregates.topPages(2), [{ path: '/b', views: 5 }, { path: '/a', views: 3 }]);
  assert.equal(aggregates.byType.click, 1);
  const second = T0 / 1000;
  assert.deepEqual(aggregates.rateSeries(second - 1, second + 3), [[second - 1, second, second + 1, second + 2, second + 3], [0, 1, 0, 9, 0]]);
  assert.equal(aggregates.firstSecond(), second);
});

test('active users are those seen in the last minute', () => {
  const aggregates = new ActivityAggregates();
  aggregates.apply(0, 0, pageView('old', '/a', T0));
  aggregates.apply(0, 1, pageView('new', '/a', T0 + 50_000));
  aggregates.apply(0, 2, pageView('old', '/a', T0 - 10_000)); // older event of a known user does not move them back
  assert.equal(aggregates.activeUsers(T0 + 30_000), 2);
  assert.equal(aggregates.activeUsers(T0 + aggregateLimits.activeUserWindowMs + 1), 1);
  aggregates.pruneIdleUsers(T0 + aggregateLimits.activeUserWindowMs + 1);
  assert.equal(aggregates.snapshot().userLastSeenMs.length, 1);
});

test('pages, users and rate buckets stay within their limits', () => {
  const aggregates = new ActivityAggregates();
  const pages = aggregateLimits.maxTrackedPages + 10;
  for (let i = 0; i < pages; i++) aggregates.apply(0, i, pageView(`u${i}`, `/page-${i}`, T0 + i * 1000));
  const snapshot = aggregates.snapshot();
  assert.equal(snapshot.pageViews.length, aggregateLimits.maxTrackedPages + 1);
  assert.equal(aggregates.topPages(1000).find((p) => p.path === OTHER_PAGES)?.views, 10);
  assert.equal(aggregates.totalEvents, pages);

  const rate = new ActivityAggregates();
  const seconds = aggregateLimits.maxRateBuckets + 5;
  for (let i = 0; i < seconds; i++) rate.apply(0, i, pageView('u', '/a', T0 + i * 1000));
  assert.equal(rate.snapshot().perSecond.length, aggregateLimits.maxRateBuckets);
  assert.equal(rate.firstSecond(), T0 / 1000 + 5, 'the oldest seconds are dropped first');
  assert.equal(rate.totalEvents, seconds, 'dropping chart buckets never changes the totals');
});
