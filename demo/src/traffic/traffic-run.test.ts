import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ActivityEvent } from '../activity.ts';
import { TrafficSimulation } from './simulation.ts';
import { runTraffic, type TrafficProgress } from './traffic-run.ts';

test('sends exactly maxEvents, counts acks and failures, and reports progress', async () => {
  const sent: ActivityEvent[] = [];
  const progress: TrafficProgress[] = [];
  const result = await runTraffic({
    simulation: new TrafficSimulation({ users: 3, seed: 1, userPrefix: 't' }),
    send: async (event) => {
      sent.push(event);
      if (sent.length % 10 === 0) throw new Error('refused');
    },
    ratePerSec: 20_000,
    maxEvents: 250,
    onProgress: (p) => progress.push(p),
  });
  assert.equal(sent.length, 250);
  assert.equal(result.sent, 250);
  assert.equal(result.failed, 25);
  assert.equal(result.acked, 225);
  assert.equal(result.done, true);
  assert.equal((result.lastError as Error).message, 'refused');
  assert.ok(progress.length >= 1 && progress.at(-1)?.done);
});

test('stops on abort without waiting for unacknowledged sends', async () => {
  const controller = new AbortController();
  let calls = 0;
  const result = await runTraffic({
    simulation: new TrafficSimulation({ users: 1, seed: 2, userPrefix: 't' }),
    send: () => {
      if (++calls === 5) controller.abort();
      return new Promise(() => {}); // never acknowledged (e.g. offline)
    },
    ratePerSec: 1_000,
    signal: controller.signal,
  });
  assert.ok(result.sent >= 5);
  assert.equal(result.acked, 0);
});
