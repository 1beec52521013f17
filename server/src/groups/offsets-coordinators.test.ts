/**
 * `OffsetsCoordinators` over a fake leadership and a fake offsets partition:
 * a load that ends without a coordinator while this broker still (or again)
 * leads the partition is tried again, even when no leadership change is
 * announced in between.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { validateLimits } from '../limits.ts';
import type { Partition } from '../partition/partition.ts';
import { resolveClusterGroupLimits } from './cluster-group-limits.ts';
import { OffsetsCoordinators, type OffsetsLeadership } from './offsets-coordinators.ts';

/** An empty offsets partition at epoch 1 whose high watermark (0) trails its log end (1) until `catchUp()`; a load's wait for it ends at `wake()`. */
function offsetsPartition(): Partition & { catchUp(): void; wake(): void } {
  let highWatermark = 0;
  const waits: (() => void)[] = [];
  return {
    topic: { name: '__consumer_offsets', topicId: 'x' }, partition: 0, logStartOffset: 0, logEndOffset: 1, leaderEpoch: 1,
    get highWatermark() { return highWatermark; },
    catchUp() { highWatermark = 1; },
    wake() { for (const w of waits.splice(0)) w(); },
    waitForVisible: () => new Promise<void>((r) => waits.push(r)),
    read: async (offset: number) => ({ batches: new Uint8Array(0), firstOffset: offset, nextOffset: offset, highWatermark, logStartOffset: 0 }),
  } as unknown as Partition & { catchUp(): void; wake(): void };
}

test('a load cut short by a moment of not leading (a fence and resume between two polls, never announced) is tried again', async () => {
  const partition = offsetsPartition();
  let leading = true;
  const leadership: OffsetsLeadership = {
    partitions: 1,
    offsetsPartition: () => partition,
    isLeader: () => leading,
    leaderOf: () => 1,
    onLeadershipChange: () => () => undefined,
  };
  const coordinators = new OffsetsCoordinators({
    leadership, limits: resolveClusterGroupLimits({ offsetsLoadPollMs: 20 }),
    host: { limits: validateLimits({}), partitionCounts: () => new Map(), highWatermark: () => undefined },
  });
  try {
    assert.ok(coordinators.isLoading(0), 'loading: the high watermark trails the log end');
    // The replica is fenced for a moment (its leader role not active): the load sees it and gives up.
    leading = false;
    partition.wake();
    await new Promise((r) => setTimeout(r, 5));
    leading = true;
    partition.catchUp();
    partition.wake();
    const deadline = Date.now() + 2000;
    let coordinator;
    while (!(coordinator = await coordinators.coordinatorOf(0, 50)) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    assert.ok(coordinator, 'this broker leads the partition again: it loads it again and coordinates');
  } finally {
    await coordinators.close();
  }
});
