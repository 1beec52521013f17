/**
 * Randomized fault schedules from a printed seed (Jepsen's nemesis schedule):
 * pure, seeded with the SDK's mulberry32, so the same seed and options give
 * the same schedule and any failure replays (`npm run test:faults -- --seed S`).
 *
 * A schedule is a short run: warm up under load, then `steps` faults one
 * after another, each held for `holdMs` and then healed, with the cluster
 * back to healthy (every partition's ISR full) before the next one. Faults
 * never overlap: with 3 brokers and `minInsyncReplicas` 2 a second
 * concurrent loss is beyond what the cluster promises to survive without
 * unavailability, and a disk fault on top of a lost broker would be data loss
 * the design does not claim to prevent (docs/cluster.md).
 *
 * Coverage: the first fault of seed S is FAULT_KINDS[S mod K], so K
 * consecutive seeds cover every kind.
 */
import { seededRandom } from '../../client-sdk/src/reconnect-policy.ts';
import { FAULT_KINDS, type FaultKind } from './history.ts';

export type LinkMode = 'blackhole' | 'reset';

export interface FaultStep {
  kind: FaultKind;
  /** How long the fault lasts before it is healed (restart, SIGCONT, links back). */
  holdMs: number;
  /** Load without faults before this step, after the previous one healed. */
  gapMs: number;
  /** Network faults: silence (packets dropped) or resets (connections refused). */
  linkMode: LinkMode;
  /** In [0, 1): picks the target among the candidates found at run time (which partition's leader, which follower, which byte). */
  pick: number;
}

export interface FaultSchedule {
  seed: number;
  partitions: number;
  /** Records per second per producer (two producers). */
  ratePerSec: number;
  warmupMs: number;
  steps: FaultStep[];
  /** Load after the last fault healed, before producers stop. */
  cooldownMs: number;
}

export interface ScheduleOptions {
  /** Faults per schedule. */
  steps: number;
  /** The brokers' lease TTL: a pause lasts longer than it (so the lease expires). */
  brokerLeaseTtlMs: number;
  /** Kinds to draw from (default all). */
  kinds: readonly FaultKind[];
  partitions: number;
  ratePerSec: number;
}

export const defaultScheduleOptions: ScheduleOptions = {
  steps: 2, brokerLeaseTtlMs: 2_000, kinds: FAULT_KINDS, partitions: 2, ratePerSec: 200,
};

export function validateScheduleOptions(options: ScheduleOptions): ScheduleOptions {
  if (!Number.isInteger(options.steps) || options.steps < 1 || options.steps > 50) throw new RangeError(`steps must be 1-50, got ${options.steps}`);
  if (!Number.isInteger(options.brokerLeaseTtlMs) || options.brokerLeaseTtlMs < 1) throw new RangeError(`brokerLeaseTtlMs must be a positive integer, got ${options.brokerLeaseTtlMs}`);
  if (options.kinds.length === 0) throw new RangeError('kinds must name at least one fault kind');
  for (const kind of options.kinds) if (!FAULT_KINDS.includes(kind)) throw new RangeError(`unknown fault kind '${kind}' (known: ${FAULT_KINDS.join(', ')})`);
  if (!Number.isInteger(options.partitions) || options.partitions < 1 || options.partitions > 64) throw new RangeError(`partitions must be 1-64, got ${options.partitions}`);
  if (!(options.ratePerSec > 0 && options.ratePerSec <= 5_000)) throw new RangeError(`ratePerSec must be in (0, 5000], got ${options.ratePerSec}`);
  return options;
}

/** Milliseconds a fault of `kind` is held: [min, max) before scaling by the pick. */
function holdRange(kind: FaultKind, leaseTtlMs: number): [number, number] {
  switch (kind) {
    case 'killLeader':
    case 'killFollower':
    case 'killController':
      return [200, 2_000];
    case 'pauseLeader':
      // Longer than the lease, so etcd expires it while the broker is frozen.
      return [leaseTtlMs + 500, leaseTtlMs + 2_000];
    case 'partitionLeader':
    case 'partitionPair':
    case 'isolateLeaderFromEtcd':
      return [1_000, leaseTtlMs + 2_000];
    case 'killEtcd':
      return [300, 3_000];
    case 'truncateFollowerTail':
    case 'bitflipFollowerTail':
    case 'killAll':
      return [100, 1_000];
  }
}

/** The schedule for `seed`: deterministic in (seed, options). */
export function faultSchedule(seed: number, options: Partial<ScheduleOptions> = {}): FaultSchedule {
  const o = validateScheduleOptions({ ...defaultScheduleOptions, ...options });
  const random = seededRandom(seed);
  const between = (min: number, max: number): number => Math.round(min + random() * (max - min));
  const steps: FaultStep[] = [];
  for (let i = 0; i < o.steps; i++) {
    const kind = i === 0 ? o.kinds[(seed >>> 0) % o.kinds.length] : o.kinds[Math.floor(random() * o.kinds.length)];
    const [min, max] = holdRange(kind, o.brokerLeaseTtlMs);
    steps.push({ kind, holdMs: between(min, max), gapMs: between(300, 1_200), linkMode: random() < 0.7 ? 'blackhole' : 'reset', pick: random() });
  }
  return { seed, partitions: o.partitions, ratePerSec: o.ratePerSec, warmupMs: between(800, 1_500), steps, cooldownMs: between(800, 1_500) };
}

/** One line per step, for the log (with the seed, so it can be replayed). */
export function describeSchedule(schedule: FaultSchedule): string {
  const steps = schedule.steps.map((s, i) => `  ${i + 1}. after ${s.gapMs} ms: ${s.kind}${s.kind.startsWith('partition') || s.kind.startsWith('isolate') ? ` (${s.linkMode})` : ''} held ${s.holdMs} ms, pick ${s.pick.toFixed(3)}`);
  return [`schedule seed ${schedule.seed}: ${schedule.partitions} partitions, ${schedule.ratePerSec} records/s per producer, warm-up ${schedule.warmupMs} ms, cool-down ${schedule.cooldownMs} ms`, ...steps].join('\n');
}

/** `count` schedule seeds from `first`, consecutive (so the first faults cycle through every kind). */
export function scheduleSeeds(first: number, count: number): number[] {
  return Array.from({ length: count }, (_, i) => (first + i) >>> 0);
}
