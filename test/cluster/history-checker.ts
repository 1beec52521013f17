/**
 * The fault-injection suite's judge (docs/cluster.md "Fault-injection
 * suite"): pure checks over one run's `History` (history.ts), Jepsen-style.
 * No I/O, no clock: the history carries every time it needs.
 *
 * Checks, each with its own counter:
 * - lost: an acknowledged record is not in the final log of its partition, or
 *   is at another offset than its acknowledgement said (offset −1 = answered
 *   as a duplicate: any offset of that partition).
 * - duplicated: a value in the final log more than once (extra copies).
 * - reordered: per producer and partition the log holds its records in send
 *   order; and real-time order: a record acknowledged before another was sent
 *   sits below it (acknowledgement order per partition; acks racing each other
 *   have no order, so only ack-before-send pairs are compared).
 * - divergent: a replica whose stored batches below the high watermark are not
 *   byte-identical to the leader's, a leader replica that does not cover
 *   [logStartOffset, highWatermark), a served log that differs from the
 *   leader's stored bytes, or a value in the log no producer sent.
 * - phantomReads: a consumer got (offset, value) that is not in the final log.
 * - backwards / gaps: a consumer saw an offset at or below one it saw before /
 *   skipped one (consumers reading from earliest must see every offset below
 *   the final high watermark, once, in order).
 * - commitRegressions: a group's acknowledged commits went down, or an offset
 *   fetch answered less than a commit acknowledged before the fetch was sent.
 * - unrecovered: after a kill or pause of a leader, no write on a partition it
 *   led was acknowledged again before the run ended.
 * Failover for KILL/PAUSE kinds = from the fault to the first acknowledged
 * write (sent at or after the fault) on each partition the target led.
 */
import { forEachRecord, readBatchHeader } from '@runnel/client/codec';
import {
  KILL_FAILOVER_KINDS, PAUSE_FAILOVER_KINDS,
  type FaultKind, type History, type PartitionFinal, type ProducedRecord, type ReplicaLog, type StoredBatch,
} from './history.ts';

export interface CheckerLimits {
  /** Violation messages kept per run (the counters count every one). Too low hides the pattern; too high floods the log. */
  maxViolationMessages: number;
}

export const defaultCheckerLimits: CheckerLimits = { maxViolationMessages: 40 };

export function validateCheckerLimits(limits: CheckerLimits): CheckerLimits {
  if (!Number.isInteger(limits.maxViolationMessages) || limits.maxViolationMessages < 1) {
    throw new RangeError(`maxViolationMessages must be a positive integer, got ${limits.maxViolationMessages}`);
  }
  return limits;
}

export interface Failover {
  fault: FaultKind;
  category: 'kill' | 'pause';
  topic: string;
  partition: number;
  ms: number;
  /** false: no write was acknowledged after the fault; `ms` runs to the end of the run. */
  recovered: boolean;
  /** From the fault until the cluster view first showed a new leader epoch with a leader (when the history has a leadership timeline). */
  electedMs?: number;
}

export interface Violations {
  lost: number;
  duplicated: number;
  reordered: number;
  divergent: number;
  phantomReads: number;
  backwards: number;
  gaps: number;
  commitRegressions: number;
  unrecovered: number;
}

export interface CheckResult extends Violations {
  seed: number;
  acked: number;
  failovers: Failover[];
  faults: Partial<Record<FaultKind, number>>;
  /** The first `maxViolationMessages` violations, in words. */
  messages: string[];
  ok: boolean;
}

const VIOLATION_KEYS = ['lost', 'duplicated', 'reordered', 'divergent', 'phantomReads', 'backwards', 'gaps', 'commitRegressions', 'unrecovered'] as const satisfies readonly (keyof Violations)[];

const tpKey = (topic: string, partition: number): string => `${topic}/${partition}`;

class Tally {
  readonly counts: Violations = { lost: 0, duplicated: 0, reordered: 0, divergent: 0, phantomReads: 0, backwards: 0, gaps: 0, commitRegressions: 0, unrecovered: 0 };
  readonly messages: string[] = [];
  constructor(private readonly maxMessages: number) {}

  add(kind: keyof Violations, message: string, count = 1): void {
    this.counts[kind] += count;
    if (this.messages.length < this.maxMessages) this.messages.push(`${kind}: ${message}`);
  }
}

/** One partition's final log, indexed by offset and by value. */
interface LogIndex {
  final: PartitionFinal;
  valueAt: Map<number, string>;
}

/** Judges one run. Every counter is 0 and `ok` true for a correct history. */
export function checkHistory(history: History, limits: CheckerLimits = defaultCheckerLimits): CheckResult {
  validateCheckerLimits(limits);
  const tally = new Tally(limits.maxViolationMessages);
  const logs = new Map<string, LogIndex>();
  for (const final of history.partitions) {
    logs.set(tpKey(final.topic, final.partition), { final, valueAt: new Map(final.log.map((r) => [r.offset, r.value])) });
  }
  const byValue = new Map<string, ProducedRecord>();
  for (const record of history.records) byValue.set(record.value, record);
  // Where each value lies in the final logs (all partitions): offsets per partition.
  const placed = new Map<string, { key: string; offset: number }[]>();
  for (const [key, { final }] of logs) {
    for (const { offset, value } of final.log) {
      const at = placed.get(value);
      if (at) at.push({ key, offset });
      else placed.set(value, [{ key, offset }]);
    }
  }
  for (const { final } of logs.values()) checkPartitionLog(final, byValue, tally);
  checkDuplicates(placed, tally);
  const finalOffsets = checkAcknowledged(history.records, placed, tally);
  checkRealTimeOrder(history.records, finalOffsets, tally);
  checkDeliveries(history, logs, tally);
  checkGroupOffsets(history, tally);
  const failovers = measureFailovers(history, tally);
  const faults: Partial<Record<FaultKind, number>> = {};
  for (const fault of history.faults) faults[fault.kind] = (faults[fault.kind] ?? 0) + 1;
  const acked = history.records.filter((r) => r.outcome.kind === 'acked').length;
  const ok = VIOLATION_KEYS.every((k) => tally.counts[k] === 0);
  return { seed: history.seed, acked, ...tally.counts, failovers, faults, messages: tally.messages, ok };
}

/** Served log contiguity, producer order within the log, unknown values, and the stored replicas against the leader's. */
function checkPartitionLog(final: PartitionFinal, byValue: Map<string, ProducedRecord>, tally: Tally): void {
  const where = tpKey(final.topic, final.partition);
  let expected = final.logStartOffset;
  const lastSeq = new Map<string, number>();
  const seen = new Set<string>();
  for (const { offset, value } of final.log) {
    if (offset !== expected) tally.add('divergent', `${where}: served log jumps from offset ${expected - 1} to ${offset}`);
    expected = offset + 1;
    const record = byValue.get(value);
    if (!record) {
      tally.add('divergent', `${where}@${offset}: value ${JSON.stringify(value)} was never sent`);
      continue;
    }
    // NB: a second copy is `duplicated`; order is judged on first copies only, so one anomaly is not counted twice.
    if (seen.has(value)) continue;
    seen.add(value);
    const previous = lastSeq.get(record.producer);
    if (previous !== undefined && record.seq < previous) {
      tally.add('reordered', `${where}@${offset}: ${value} after ${record.producer}:${previous} (producer order)`);
    }
    lastSeq.set(record.producer, Math.max(previous ?? -1, record.seq));
  }
  if (expected !== final.highWatermark) tally.add('divergent', `${where}: served log ends at ${expected}, high watermark ${final.highWatermark}`);
  checkReplicas(final, tally);
}

/** Batches of a replica that hold offsets below the high watermark. */
function belowHighWatermark(replica: ReplicaLog, highWatermark: number): StoredBatch[] {
  return replica.batches.filter((b) => b.baseOffset < highWatermark);
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function checkReplicas(final: PartitionFinal, tally: Tally): void {
  const where = tpKey(final.topic, final.partition);
  const hw = final.highWatermark;
  const reference = final.replicas.find((r) => r.brokerId === final.leader) ?? final.replicas[0];
  if (!reference) {
    if (hw > final.logStartOffset) tally.add('divergent', `${where}: no replica read, high watermark ${hw}`);
    return;
  }
  const referenceBatches = belowHighWatermark(reference, hw);
  const coverage = coverageProblem(referenceBatches, final.logStartOffset, hw);
  if (coverage) tally.add('divergent', `${where}: leader ${reference.brokerId}'s replica ${coverage}`);
  else checkServedValues(final, reference.brokerId, referenceBatches, tally);
  for (const replica of final.replicas) {
    if (replica === reference) continue;
    const batches = belowHighWatermark(replica, hw);
    const problem = batchDifference(referenceBatches, batches);
    if (problem) tally.add('divergent', `${where}: broker ${replica.brokerId} differs from leader ${reference.brokerId} below ${hw}: ${problem}`);
  }
}

/** Why `batches` do not cover [logStartOffset, highWatermark) contiguously, or null. */
function coverageProblem(batches: StoredBatch[], logStartOffset: number, highWatermark: number): string | null {
  if (highWatermark <= logStartOffset) return null;
  if (batches.length === 0) return `holds nothing below the high watermark ${highWatermark}`;
  if (batches[0].baseOffset > logStartOffset) return `starts at ${batches[0].baseOffset}, log start ${logStartOffset}`;
  for (let i = 1; i < batches.length; i++) {
    if (batches[i].baseOffset !== batches[i - 1].lastOffset + 1) return `jumps from ${batches[i - 1].lastOffset} to ${batches[i].baseOffset}`;
  }
  const last = batches[batches.length - 1].lastOffset;
  if (last !== highWatermark - 1) return `ends at ${last}, high watermark ${highWatermark}`;
  return null;
}

function batchDifference(reference: StoredBatch[], other: StoredBatch[]): string | null {
  const n = Math.max(reference.length, other.length);
  for (let i = 0; i < n; i++) {
    const a = reference[i];
    const b = other[i];
    if (!a) return `extra batch ${b.baseOffset}-${b.lastOffset}`;
    if (!b) return `missing batch ${a.baseOffset}-${a.lastOffset}`;
    if (a.baseOffset !== b.baseOffset || a.lastOffset !== b.lastOffset) return `batch ${i} is ${b.baseOffset}-${b.lastOffset}, leader's ${a.baseOffset}-${a.lastOffset}`;
    if (!sameBytes(a.bytes, b.bytes)) return `batch ${a.baseOffset}-${a.lastOffset} bytes differ`;
  }
  return null;
}

const textDecoder = new TextDecoder();

/** The values stored in `batches`, by offset (JSON-decoded when they are JSON, as the HTTP API serves them). */
export function storedValues(batches: StoredBatch[]): Map<number, string> {
  const out = new Map<number, string>();
  for (const batch of batches) {
    const header = readBatchHeader(batch.bytes, 0);
    if (!header.ok) continue;
    forEachRecord(batch.bytes, 0, header.value, (r) => {
      if (r.valueLength < 0) return void out.set(r.offset, 'null');
      const text = textDecoder.decode(batch.bytes.subarray(r.valueStart, r.valueStart + r.valueLength));
      let value: string;
      try {
        const parsed: unknown = JSON.parse(text);
        value = typeof parsed === 'string' ? parsed : text;
      } catch {
        value = text;
      }
      out.set(r.offset, value);
    });
  }
  return out;
}

function checkServedValues(final: PartitionFinal, leader: number, batches: StoredBatch[], tally: Tally): void {
  const stored = storedValues(batches);
  for (const { offset, value } of final.log) {
    const bytes = stored.get(offset);
    if (bytes !== value) {
      tally.add('divergent', `${tpKey(final.topic, final.partition)}@${offset}: served ${JSON.stringify(value)}, leader ${leader} stores ${JSON.stringify(bytes)}`);
      return; // one message per partition: the rest usually follows from it
    }
  }
}

function checkDuplicates(placed: Map<string, { key: string; offset: number }[]>, tally: Tally): void {
  for (const [value, at] of placed) {
    if (at.length > 1) tally.add('duplicated', `${value} at ${at.map((p) => `${p.key}@${p.offset}`).join(', ')}`, at.length - 1);
  }
}

/** Lost acknowledged records; answers each acknowledged record's offset in the final log (for the real-time check). */
function checkAcknowledged(records: ProducedRecord[], placed: Map<string, { key: string; offset: number }[]>, tally: Tally): Map<ProducedRecord, number> {
  const finalOffsets = new Map<ProducedRecord, number>();
  for (const record of records) {
    if (record.outcome.kind !== 'acked') continue;
    const key = tpKey(record.topic, record.partition);
    const at = (placed.get(record.value) ?? []).filter((p) => p.key === key);
    const ackedOffset = record.outcome.offset;
    if (at.length === 0) {
      tally.add('lost', `${record.value} acknowledged at ${key}@${ackedOffset} is not in the final log`);
      continue;
    }
    const hit = ackedOffset < 0 ? at[0] : at.find((p) => p.offset === ackedOffset);
    if (!hit) {
      tally.add('lost', `${record.value} acknowledged at ${key}@${ackedOffset} is at ${at.map((p) => p.offset).join(', ')} instead`);
      continue;
    }
    finalOffsets.set(record, hit.offset);
  }
  return finalOffsets;
}

/**
 * Real-time order per partition: if A was acknowledged before B was sent, A's
 * offset is below B's. Scans offsets from the top keeping the earliest ack
 * time above; B is reordered when that ack precedes B's send.
 */
function checkRealTimeOrder(records: ProducedRecord[], finalOffsets: Map<ProducedRecord, number>, tally: Tally): void {
  const byPartition = new Map<string, { record: ProducedRecord; offset: number; ackedAtMs: number }[]>();
  for (const [record, offset] of finalOffsets) {
    if (record.outcome.kind !== 'acked') continue;
    const key = tpKey(record.topic, record.partition);
    const list = byPartition.get(key) ?? [];
    list.push({ record, offset, ackedAtMs: record.outcome.ackedAtMs });
    byPartition.set(key, list);
  }
  for (const [key, list] of byPartition) {
    list.sort((a, b) => b.offset - a.offset);
    let earliestAckAbove = Number.POSITIVE_INFINITY;
    let witness: ProducedRecord | undefined;
    for (const entry of list) {
      if (earliestAckAbove < entry.record.sentAtMs) {
        tally.add('reordered', `${key}: ${entry.record.value}@${entry.offset} was sent after ${witness!.value} (above it) was acknowledged`);
      }
      if (entry.ackedAtMs < earliestAckAbove) {
        earliestAckAbove = entry.ackedAtMs;
        witness = entry.record;
      }
    }
  }
}

function checkDeliveries(history: History, logs: Map<string, LogIndex>, tally: Tally): void {
  const last = new Map<string, number>();
  for (const d of history.deliveries) {
    const key = tpKey(d.topic, d.partition);
    const stored = logs.get(key)?.valueAt.get(d.offset);
    if (stored !== d.value) {
      tally.add('phantomReads', `${d.consumer}${d.via ? ` via ${d.via}` : ''} got ${d.value} at ${key}@${d.offset}; the final log has ${stored === undefined ? 'nothing' : stored} there`);
    }
    const streamKey = `${d.consumer} ${key}`;
    const earliest = history.consumers.includes(d.consumer);
    const previous = last.get(streamKey) ?? (earliest ? (logs.get(key)?.final.logStartOffset ?? 0) - 1 : undefined);
    if (previous !== undefined && d.offset <= previous) tally.add('backwards', `${d.consumer}${d.via ? ` via ${d.via}` : ''} got ${key}@${d.offset} after @${previous}`);
    else if (earliest && previous !== undefined && d.offset > previous + 1) tally.add('gaps', `${d.consumer} jumped from ${key}@${previous} to @${d.offset}`);
    last.set(streamKey, Math.max(previous ?? -1, d.offset));
  }
  for (const consumer of history.consumers) {
    for (const { final } of logs.values()) {
      const key = tpKey(final.topic, final.partition);
      const reached = last.get(`${consumer} ${key}`) ?? final.logStartOffset - 1;
      if (reached < final.highWatermark - 1) tally.add('gaps', `${consumer} stopped at ${key}@${reached}, high watermark ${final.highWatermark}`);
    }
  }
}

function checkGroupOffsets(history: History, tally: Tally): void {
  const commits = new Map<string, { offset: number; atMs: number }[]>();
  for (const e of [...history.groupOffsets].sort((a, b) => a.atMs - b.atMs)) {
    const key = `${e.group} ${tpKey(e.topic, e.partition)}`;
    const list = commits.get(key) ?? [];
    if (e.kind === 'committed') {
      const previous = list[list.length - 1];
      if (previous && e.offset < previous.offset) tally.add('commitRegressions', `${key}: commit ${e.offset} acknowledged after ${previous.offset}`);
      list.push({ offset: e.offset, atMs: e.atMs });
      commits.set(key, list);
      continue;
    }
    let floor = -1;
    for (const c of list) if (c.atMs <= e.requestedAtMs) floor = Math.max(floor, c.offset);
    if (e.offset < floor) tally.add('commitRegressions', `${key}: fetch${e.via ? ` via ${e.via}` : ''} answered ${e.offset}, ${floor} was committed before it was asked`);
  }
}

function measureFailovers(history: History, tally: Tally): Failover[] {
  const out: Failover[] = [];
  for (const fault of history.faults) {
    const category = KILL_FAILOVER_KINDS.includes(fault.kind) ? 'kill' : PAUSE_FAILOVER_KINDS.includes(fault.kind) ? 'pause' : undefined;
    if (!category) continue;
    for (const { topic, partition } of fault.ledPartitions) {
      let first = Number.POSITIVE_INFINITY;
      for (const r of history.records) {
        if (r.topic !== topic || r.partition !== partition || r.outcome.kind !== 'acked' || r.sentAtMs < fault.atMs) continue;
        first = Math.min(first, r.outcome.ackedAtMs);
      }
      const recovered = Number.isFinite(first);
      if (!recovered) tally.add('unrecovered', `${tpKey(topic, partition)}: no write acknowledged after ${fault.kind} (${fault.target}) at ${fault.atMs}`);
      const electedAtMs = electionAfter(history, topic, partition, fault.atMs);
      out.push({
        fault: fault.kind, category, topic, partition, ms: (recovered ? first : history.endedAtMs) - fault.atMs, recovered,
        ...(electedAtMs === undefined ? {} : { electedMs: electedAtMs - fault.atMs }),
      });
    }
  }
  return out;
}

/** When the leadership timeline first shows `topic/partition` led at an epoch above the one current at `atMs`. */
function electionAfter(history: History, topic: string, partition: number, atMs: number): number | undefined {
  const timeline = (history.leadership ?? []).filter((o) => o.topic === topic && o.partition === partition);
  let epoch = -1;
  for (const o of timeline) if (o.atMs <= atMs) epoch = Math.max(epoch, o.leaderEpoch);
  if (epoch < 0) return undefined;
  return timeline.find((o) => o.atMs > atMs && o.leaderEpoch > epoch && o.leader >= 0)?.atMs;
}

/** Nearest-rank percentile (p in 0..100) of `values`; null when empty. */
export function percentile(values: readonly number[], p: number): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

/** The suite's closing figures over many runs (the last line of `npm run test:faults`). */
export interface FaultsSummary extends Violations {
  bench: 'faults';
  schedules: number;
  seeds: number[];
  acked: number;
  killFailoverP99Ms: number | null;
  pauseFailoverP99Ms: number | null;
  faults: Partial<Record<FaultKind, number>>;
}

export function summarizeRuns(results: readonly CheckResult[]): FaultsSummary {
  const sum = (k: keyof Violations | 'acked'): number => results.reduce((n, r) => n + r[k], 0);
  const faults: Partial<Record<FaultKind, number>> = {};
  for (const r of results) for (const [k, n] of Object.entries(r.faults) as [FaultKind, number][]) faults[k] = (faults[k] ?? 0) + n;
  const failoverMs = (c: 'kill' | 'pause') => results.flatMap((r) => r.failovers.filter((f) => f.category === c).map((f) => Math.round(f.ms)));
  return {
    bench: 'faults', schedules: results.length, seeds: results.map((r) => r.seed), acked: sum('acked'),
    lost: sum('lost'), duplicated: sum('duplicated'), reordered: sum('reordered'), divergent: sum('divergent'), phantomReads: sum('phantomReads'),
    killFailoverP99Ms: percentile(failoverMs('kill'), 99), pauseFailoverP99Ms: percentile(failoverMs('pause'), 99), faults,
    backwards: sum('backwards'), gaps: sum('gaps'), commitRegressions: sum('commitRegressions'), unrecovered: sum('unrecovered'),
  };
}

function distribution(values: number[]): string {
  if (values.length === 0) return 'none measured';
  const q = (p: number) => percentile(values, p);
  return `n=${values.length} min=${Math.min(...values)} p50=${q(50)} p90=${q(90)} p99=${q(99)} max=${Math.max(...values)} ms`;
}

/**
 * The human summary, then the JSON line (last). The JSON's first keys are the
 * issue's; backwards, gaps, commitRegressions and unrecovered follow `faults`.
 */
export function formatSummary(results: readonly CheckResult[]): string[] {
  const s = summarizeRuns(results);
  const failoverMs = (c: 'kill' | 'pause') => results.flatMap((r) => r.failovers.filter((f) => f.category === c).map((f) => Math.round(f.ms)));
  const lines = [
    `faults: ${s.schedules} schedules, seeds ${s.seeds.join(' ')}`,
    `  acknowledged ${s.acked}; lost ${s.lost}, duplicated ${s.duplicated}, reordered ${s.reordered}, divergent ${s.divergent}, phantom reads ${s.phantomReads}, backwards ${s.backwards}, gaps ${s.gaps}, commit regressions ${s.commitRegressions}, unrecovered ${s.unrecovered}`,
    `  failover after SIGKILL of a leader: ${distribution(failoverMs('kill'))}`,
    `  failover after SIGSTOP / partition of a leader: ${distribution(failoverMs('pause'))}`,
    `  faults injected: ${Object.entries(s.faults).map(([k, n]) => `${k} ${n}`).join(', ') || 'none'}`,
  ];
  const kinds = [...new Set(results.flatMap((r) => r.failovers.map((f) => f.fault)))];
  for (const kind of kinds) {
    const of = results.flatMap((r) => r.failovers.filter((f) => f.fault === kind));
    const elected = of.flatMap((f) => (f.electedMs === undefined ? [] : [Math.round(f.electedMs)]));
    lines.push(`    ${kind}: first ack ${distribution(of.map((f) => Math.round(f.ms)))}; new leader in the view ${distribution(elected)}`);
  }
  for (const r of results) if (!r.ok) lines.push(`  seed ${r.seed} FAILED:`, ...r.messages.map((m) => `    ${m}`));
  const { bench, schedules, seeds, acked, lost, duplicated, reordered, divergent, phantomReads, killFailoverP99Ms, pauseFailoverP99Ms, faults, backwards, gaps, commitRegressions, unrecovered } = s;
  lines.push(JSON.stringify({ bench, schedules, seeds, acked, lost, duplicated, reordered, divergent, phantomReads, killFailoverP99Ms, pauseFailoverP99Ms, faults, backwards, gaps, commitRegressions, unrecovered }));
  return lines;
}
