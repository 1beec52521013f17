/** Seeded schedules: the same seed gives the same schedule; consecutive seeds cover every fault kind; holds respect the lease. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FAULT_KINDS } from './history.ts';
import { describeSchedule, faultSchedule, scheduleSeeds, validateScheduleOptions, defaultScheduleOptions } from './fault-schedule.ts';

test('the same seed and options give the same schedule; another seed another', () => {
  assert.deepEqual(faultSchedule(1234), faultSchedule(1234));
  assert.deepEqual(faultSchedule(1234, { steps: 5 }), faultSchedule(1234, { steps: 5 }));
  assert.notDeepEqual(faultSchedule(1234).steps, faultSchedule(1235).steps);
  assert.match(describeSchedule(faultSchedule(77)), /^schedule seed 77: /);
});

test('K consecutive seeds start with every fault kind once', () => {
  const firsts = scheduleSeeds(1_000_003, FAULT_KINDS.length).map((s) => faultSchedule(s).steps[0].kind);
  assert.deepEqual([...firsts].sort(), [...FAULT_KINDS].sort());
});

test('a pause outlasts the lease; every hold and gap is positive and bounded; picks in [0, 1)', () => {
  for (const seed of scheduleSeeds(5, 300)) {
    const schedule = faultSchedule(seed, { steps: 4, brokerLeaseTtlMs: 1_500 });
    assert.equal(schedule.steps.length, 4);
    for (const step of schedule.steps) {
      if (step.kind === 'pauseLeader') assert.ok(step.holdMs > 1_500, `seed ${seed}: pause of ${step.holdMs} ms`);
      assert.ok(step.holdMs >= 100 && step.holdMs <= 4_000, `seed ${seed}: hold ${step.holdMs}`);
      assert.ok(step.gapMs >= 300 && step.gapMs <= 1_200);
      assert.ok(step.pick >= 0 && step.pick < 1);
      assert.ok(step.linkMode === 'blackhole' || step.linkMode === 'reset');
    }
  }
});

test('kinds restrict the draw; bad options are refused with the fix', () => {
  const only = faultSchedule(9, { steps: 6, kinds: ['killEtcd', 'killAll'] });
  assert.ok(only.steps.every((s) => s.kind === 'killEtcd' || s.kind === 'killAll'));
  assert.throws(() => validateScheduleOptions({ ...defaultScheduleOptions, kinds: ['nope' as never] }), /unknown fault kind 'nope'/);
  assert.throws(() => validateScheduleOptions({ ...defaultScheduleOptions, steps: 0 }), /steps must be 1-50/);
  assert.throws(() => validateScheduleOptions({ ...defaultScheduleOptions, kinds: [] }), /at least one/);
});
