/**
 * The checker against crafted histories: a correct one passes with every
 * counter 0; each mutation (a lost ack, a duplicate, producer and real-time
 * reorders, divergent replica bytes, a short leader replica, a phantom read,
 * a consumer going backwards or skipping, a commit regression, a partition
 * that never recovers) fails exactly the check it breaks.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { encodeRecordBatch } from '@runnel/client/codec';
import { checkHistory, formatSummary, percentile, storedValues, summarizeRuns, type CheckResult } from './history-checker.ts';
import type { Delivery, History, PartitionFinal, ProducedRecord, StoredBatch } from './history.ts';

const TOPIC = 't';
const encoder = new TextEncoder();

function batch(baseOffset: number, values: string[]): StoredBatch {
  const bytes = encodeRecordBatch({
    baseOffset, partitionLeaderEpoch: 1, producerId: 7, producerEpoch: 0, baseSequence: baseOffset,
    records: values.map((v, i) => ({ value: encoder.encode(JSON.stringify(v)), timestampMs: 1_000 + i })),
  });
  return { baseOffset, lastOffset: baseOffset + values.length - 1, bytes };
}

/**
 * Two producers p0/p1 alternating over 2 partitions, 10 records each, sent 10 ms
 * apart and acknowledged 5 ms later; batches of 2 records; 3 identical replicas;
 * two earliest consumers that saw everything; a group committing 4 then 10.
 */
function correctHistory(): History {
  const records: ProducedRecord[] = [];
  const logs = new Map<number, string[]>([[0, []], [1, []]]);
  for (let i = 0; i < 20; i++) {
    const producer = `p${i % 2}`;
    const seq = Math.floor(i / 2);
    const partition = seq % 2;
    const value = `${producer}:${seq}`;
    const log = logs.get(partition)!;
    const offset = log.length;
    log.push(value);
    records.push({ producer, seq, topic: TOPIC, partition, value, sentAtMs: 100 + i * 10, outcome: { kind: 'acked', offset, ackedAtMs: 105 + i * 10 } });
  }
  const partitions: PartitionFinal[] = [...logs].map(([partition, values]) => {
    const batches: StoredBatch[] = [];
    for (let o = 0; o < values.length; o += 2) batches.push(batch(o, values.slice(o, o + 2)));
    return {
      topic: TOPIC, partition, leader: 1, logStartOffset: 0, highWatermark: values.length,
      log: values.map((value, offset) => ({ offset, value })),
      replicas: [1, 2, 3].map((brokerId) => ({ brokerId, batches: batches.map((b) => ({ ...b, bytes: b.bytes.slice() })) })),
    };
  });
  const deliveries: Delivery[] = [];
  for (const consumer of ['sdk', 'http']) {
    for (const p of partitions) for (const r of p.log) deliveries.push({ consumer, topic: TOPIC, partition: p.partition, offset: r.offset, value: r.value, atMs: 400 + r.offset });
  }
  return {
    seed: 42, records, deliveries, partitions, consumers: ['sdk', 'http'], endedAtMs: 1_000,
    groupOffsets: [
      { kind: 'committed', group: 'g', topic: TOPIC, partition: 0, offset: 4, atMs: 300 },
      { kind: 'observed', group: 'g', topic: TOPIC, partition: 0, offset: 4, atMs: 320, requestedAtMs: 310 },
      { kind: 'committed', group: 'g', topic: TOPIC, partition: 0, offset: 10, atMs: 500 },
      { kind: 'observed', group: 'g', topic: TOPIC, partition: 0, offset: 10, atMs: 520, requestedAtMs: 510 },
    ],
    faults: [{ kind: 'killLeader', atMs: 150, healedAtMs: 400, target: 'broker 1', ledPartitions: [{ topic: TOPIC, partition: 0 }] }],
  };
}

const COUNTERS = ['lost', 'duplicated', 'reordered', 'divergent', 'phantomReads', 'backwards', 'gaps', 'commitRegressions', 'unrecovered'] as const;

/** Asserts that exactly the named counters are non-zero (with the given values). */
function assertOnly(result: CheckResult, expected: Partial<Record<(typeof COUNTERS)[number], number>>): void {
  const actual = Object.fromEntries(COUNTERS.map((k) => [k, result[k]]));
  assert.deepEqual(actual, { ...Object.fromEntries(COUNTERS.map((k) => [k, 0])), ...expected }, result.messages.join('\n'));
  assert.equal(result.ok, Object.keys(expected).length === 0);
}

const partition = (h: History, p: number): PartitionFinal => h.partitions.find((x) => x.partition === p)!;
const record = (h: History, value: string): ProducedRecord => h.records.find((r) => r.value === value)!;

test('a correct history passes every check', () => {
  const result = checkHistory(correctHistory());
  assertOnly(result, {});
  assert.equal(result.acked, 20);
  assert.deepEqual(result.faults, { killLeader: 1 });
  // Partition 0's first write sent at/after 150 is p1:2 (sent 150, acked 155).
  assert.deepEqual(result.failovers, [{ fault: 'killLeader', category: 'kill', topic: TOPIC, partition: 0, ms: 5, recovered: true }]);
});

test('lost: an acknowledged record missing from the final log (served log and every replica)', () => {
  const h = correctHistory();
  const p0 = partition(h, 0);
  // Drop the last record of partition 0 everywhere: the high watermark goes down with it.
  const dropped = p0.log.pop()!;
  p0.highWatermark -= 1;
  for (const r of p0.replicas) {
    const last = r.batches.pop()!;
    const keep = storedValues([last]).get(last.baseOffset)!;
    r.batches.push(batch(last.baseOffset, [keep]));
  }
  h.deliveries = h.deliveries.filter((d) => !(d.partition === 0 && d.offset === dropped.offset));
  const result = checkHistory(h);
  assertOnly(result, { lost: 1 });
  assert.match(result.messages[0], new RegExp(`${dropped.value} acknowledged`));
});

test('lost: an acknowledgement that named another offset than where the record is', () => {
  const h = correctHistory();
  const r = record(h, 'p0:0');
  r.outcome = { kind: 'acked', offset: 3, ackedAtMs: 105 };
  assertOnly(checkHistory(h), { lost: 1 });
});

test('an acknowledgement as a duplicate (offset -1) matches wherever the record is', () => {
  const h = correctHistory();
  record(h, 'p0:0').outcome = { kind: 'acked', offset: -1, ackedAtMs: 105 };
  assertOnly(checkHistory(h), {});
});

test('failed and pending sends may be absent, but never twice', () => {
  const h = correctHistory();
  h.records.push({ producer: 'p0', seq: 10, topic: TOPIC, partition: 0, value: 'p0:10', sentAtMs: 900, outcome: { kind: 'failed', code: 'REQUEST_TIMED_OUT', atMs: 950 } });
  h.records.push({ producer: 'p1', seq: 10, topic: TOPIC, partition: 1, value: 'p1:10', sentAtMs: 900, outcome: { kind: 'pending' } });
  assertOnly(checkHistory(h), {});
});

/** Appends `value` to partition `p` everywhere (served log, replicas, consumers), as a correctly replicated record. */
function appendEverywhere(h: History, p: number, value: string): void {
  const final = partition(h, p);
  const offset = final.highWatermark;
  final.log.push({ offset, value });
  final.highWatermark += 1;
  for (const r of final.replicas) r.batches.push(batch(offset, [value]));
  for (const consumer of h.consumers) h.deliveries.push({ consumer, topic: TOPIC, partition: p, offset, value, atMs: 800 });
}

test('duplicated: a record written twice (same value at two offsets)', () => {
  const h = correctHistory();
  appendEverywhere(h, 0, 'p0:0');
  // The copy at the end is below later seqs of p0, but a copy is only a duplicate, not also a reorder.
  assertOnly(checkHistory(h), { duplicated: 1 });
});

test('duplicated: an unacknowledged record in two partitions', () => {
  const h = correctHistory();
  h.records.push({ producer: 'p2', seq: 0, topic: TOPIC, partition: 0, value: 'p2:0', sentAtMs: 900, outcome: { kind: 'pending' } });
  appendEverywhere(h, 0, 'p2:0');
  appendEverywhere(h, 1, 'p2:0');
  assertOnly(checkHistory(h), { duplicated: 1 });
});

test('reordered: one producer\'s records out of send order in a partition', () => {
  const h = correctHistory();
  // p0's seqs 0 and 2 both go to partition 0 (offsets 0 and 2): swap them everywhere.
  const p0 = partition(h, 0);
  const a = p0.log[0].value;
  const b = p0.log[2].value;
  assert.deepEqual([a, b], ['p0:0', 'p0:2']);
  p0.log[0].value = b;
  p0.log[2].value = a;
  const values = p0.log.map((r) => r.value);
  for (const r of p0.replicas) r.batches = [0, 2, 4, 6, 8].map((o) => batch(o, values.slice(o, o + 2)));
  for (const d of h.deliveries) if (d.partition === 0) d.value = values[d.offset];
  // Acks follow the log, so only the order is wrong (not the offsets).
  record(h, 'p0:0').outcome = { kind: 'acked', offset: 2, ackedAtMs: 105 };
  record(h, 'p0:2').outcome = { kind: 'acked', offset: 0, ackedAtMs: 145 };
  const result = checkHistory(h);
  assert.ok(result.reordered >= 1, result.messages.join('\n'));
  assertOnly(result, { reordered: result.reordered });
});

test('reordered: a record acknowledged before another was sent sits above it (real-time order)', () => {
  const h = correctHistory();
  // A third producer's record, sent at 900 after all others were acknowledged, placed at offset 0 of partition 1.
  h.records.push({ producer: 'p2', seq: 0, topic: TOPIC, partition: 1, value: 'p2:0', sentAtMs: 900, outcome: { kind: 'acked', offset: 0, ackedAtMs: 905 } });
  const p1 = partition(h, 1);
  const values = ['p2:0', ...p1.log.map((r) => r.value)];
  p1.log = values.map((value, offset) => ({ offset, value }));
  p1.highWatermark = values.length;
  for (const r of p1.replicas) r.batches = values.map((v, o) => batch(o, [v]));
  for (const r of h.records) if (r.partition === 1 && r.producer !== 'p2' && r.outcome.kind === 'acked') r.outcome.offset += 1;
  h.deliveries = h.deliveries.filter((d) => d.partition !== 1);
  for (const consumer of h.consumers) for (const r of p1.log) h.deliveries.push({ consumer, topic: TOPIC, partition: 1, offset: r.offset, value: r.value, atMs: 950 });
  const result = checkHistory(h);
  assertOnly(result, { reordered: 1 });
  assert.match(result.messages[0], /p2:0@0 was sent after p0:1 \(above it\) was acknowledged/);
});

test('acknowledgements racing each other are not an order (ack after the other was sent)', () => {
  const h = correctHistory();
  // p0:0 (offset 0) acknowledged after p1:0 (offset 1) was sent and acknowledged: concurrent, fine.
  record(h, 'p0:0').outcome = { kind: 'acked', offset: 0, ackedAtMs: 130 };
  assertOnly(checkHistory(h), {});
});

test('divergent: a follower replica with one flipped byte below the high watermark', () => {
  const h = correctHistory();
  const follower = partition(h, 1).replicas.find((r) => r.brokerId === 3)!;
  follower.batches[2].bytes[follower.batches[2].bytes.length - 1] ^= 0x10;
  const result = checkHistory(h);
  assertOnly(result, { divergent: 1 });
  assert.match(result.messages[0], /broker 3 differs .* bytes differ/);
});

test('divergent: a follower missing a batch, and one with a batch split differently', () => {
  const h = correctHistory();
  partition(h, 0).replicas.find((r) => r.brokerId === 2)!.batches.pop();
  const split = partition(h, 1).replicas.find((r) => r.brokerId === 3)!;
  const values = partition(h, 1).log.map((r) => r.value);
  split.batches = values.map((v, o) => batch(o, [v]));
  assertOnly(checkHistory(h), { divergent: 2 });
});

test('a follower tail above the high watermark is not compared', () => {
  const h = correctHistory();
  partition(h, 0).replicas.find((r) => r.brokerId === 2)!.batches.push(batch(10, ['p0:99']));
  assertOnly(checkHistory(h), {});
});

test('divergent: the leader replica does not cover the high watermark', () => {
  const h = correctHistory();
  const p0 = partition(h, 0);
  for (const r of p0.replicas) r.batches.pop();
  const result = checkHistory(h);
  assertOnly(result, { divergent: 1 });
  assert.match(result.messages[0], /leader 1's replica ends at 7, high watermark 10/);
});

test('divergent: the served log differs from the leader\'s stored bytes; a value nobody sent', () => {
  const h = correctHistory();
  const p1 = partition(h, 1);
  p1.log[3].value = 'p9:9';
  for (const d of h.deliveries) if (d.partition === 1 && d.offset === 3) d.value = 'p9:9';
  const result = checkHistory(h);
  // Served != stored, and p9:9 was never sent; the acknowledged record at @3 is then lost.
  assert.equal(result.divergent, 2, result.messages.join('\n'));
  assert.equal(result.lost, 1);
});

test('phantomReads: a consumer got a record that is not in the final log', () => {
  const h = correctHistory();
  const i = h.deliveries.findIndex((d) => d.consumer === 'http' && d.partition === 0 && d.offset === 5);
  h.deliveries[i] = { ...h.deliveries[i], value: 'p0:77' };
  const result = checkHistory(h);
  assertOnly(result, { phantomReads: 1 });
  // Above the high watermark counts as phantom too (a read of an uncommitted tail).
  h.deliveries[i] = { ...h.deliveries[i], value: partition(h, 0).log[5].value };
  h.deliveries.push({ consumer: 'other', topic: TOPIC, partition: 0, offset: 10, value: 'p0:5', atMs: 900 });
  assertOnly(checkHistory(h), { phantomReads: 1 });
});

test('backwards: a consumer sees an offset again or an earlier one', () => {
  const h = correctHistory();
  const i = h.deliveries.findIndex((d) => d.consumer === 'sdk' && d.partition === 1 && d.offset === 6);
  h.deliveries.splice(i + 1, 0, { ...h.deliveries[i - 2] });
  const result = checkHistory(h);
  assertOnly(result, { backwards: 1 });
  assert.match(result.messages[0], /sdk got t\/1@4 after @6/);
});

test('gaps: a consumer from earliest skips an offset, or stops short of the high watermark', () => {
  const h = correctHistory();
  h.deliveries = h.deliveries.filter((d) => !(d.consumer === 'sdk' && d.partition === 0 && d.offset === 3));
  h.deliveries = h.deliveries.filter((d) => !(d.consumer === 'http' && d.partition === 1 && d.offset === 9));
  const result = checkHistory(h);
  assertOnly(result, { gaps: 2 });
  assert.ok(result.messages.some((m) => /sdk jumped from t\/0@2 to @4/.test(m)));
  assert.ok(result.messages.some((m) => /http stopped at t\/1@8, high watermark 10/.test(m)));
});

test('gaps: a consumer from earliest that starts past the log start', () => {
  const h = correctHistory();
  h.deliveries = h.deliveries.filter((d) => !(d.consumer === 'sdk' && d.partition === 0 && d.offset === 0));
  assertOnly(checkHistory(h), { gaps: 1 });
});

test('commitRegressions: an acknowledged commit below the previous one, and a fetch below an earlier commit', () => {
  const h = correctHistory();
  h.groupOffsets.push({ kind: 'committed', group: 'g', topic: TOPIC, partition: 0, offset: 8, atMs: 600 });
  assertOnly(checkHistory(h), { commitRegressions: 1 });
  const h2 = correctHistory();
  h2.groupOffsets.push({ kind: 'observed', group: 'g', topic: TOPIC, partition: 0, offset: 4, atMs: 700, requestedAtMs: 650 });
  assertOnly(checkHistory(h2), { commitRegressions: 1 });
  // A fetch sent before the commit was acknowledged may answer the older offset.
  const h3 = correctHistory();
  h3.groupOffsets.push({ kind: 'observed', group: 'g', topic: TOPIC, partition: 0, offset: 4, atMs: 505, requestedAtMs: 490 });
  assertOnly(checkHistory(h3), {});
});

test('unrecovered: no write acknowledged on a partition after its leader was killed', () => {
  const h = correctHistory();
  h.faults = [{ kind: 'pauseLeader', atMs: 500, target: 'broker 2', ledPartitions: [{ topic: TOPIC, partition: 1 }] }];
  const result = checkHistory(h);
  assertOnly(result, { unrecovered: 1 });
  assert.deepEqual(result.failovers, [{ fault: 'pauseLeader', category: 'pause', topic: TOPIC, partition: 1, ms: 500, recovered: false }]);
});

test('failover: from the fault to the first acknowledgement of a write sent at or after it', () => {
  const h = correctHistory();
  // Partition 1 gets odd seqs: p0:5 and p1:5 are the first sent after 175 (at 200 and 210, acked 5 ms later).
  assert.deepEqual([record(h, 'p0:5').sentAtMs, record(h, 'p1:5').sentAtMs], [200, 210]);
  // p0:5 now answers late (1,100): the first acknowledgement is p1:5's at 215. p1:3 (sent 170) does not count.
  record(h, 'p0:5').outcome = { kind: 'acked', offset: 2, ackedAtMs: 1_100 };
  record(h, 'p1:3').outcome = { kind: 'acked', offset: 3, ackedAtMs: 176 };
  h.faults = [{ kind: 'partitionLeader', atMs: 175, target: 'broker 1', ledPartitions: [{ topic: TOPIC, partition: 1 }] }];
  const result = checkHistory(h);
  assert.deepEqual(result.failovers, [{ fault: 'partitionLeader', category: 'pause', topic: TOPIC, partition: 1, ms: 40, recovered: true }]);
});

test('failover: the leadership timeline gives when the new epoch appeared', () => {
  const h = correctHistory();
  const at = (atMs: number, leader: number, leaderEpoch: number) => ({ topic: TOPIC, partition: 0, atMs, leader, leaderEpoch, isr: [1, 2, 3], controller: 1 });
  // Epoch 1 before the kill at 150; offline (-1, epoch 2) then led by 2 at epoch 3 at 152; epoch 4 later is not the first.
  h.leadership = [at(100, 1, 1), at(151, -1, 2), at(152, 2, 3), at(300, 3, 4)];
  const [failover] = checkHistory(h).failovers;
  assert.equal(failover.electedMs, 2);
  assert.equal(failover.ms, 5);
  h.leadership = [];
  assert.equal(checkHistory(h).failovers[0].electedMs, undefined);
});

test('percentile is nearest-rank; the summary sums runs and ends with the JSON line', () => {
  assert.equal(percentile([], 99), null);
  assert.equal(percentile([5], 99), 5);
  assert.equal(percentile(Array.from({ length: 100 }, (_, i) => i + 1), 99), 99);
  assert.equal(percentile(Array.from({ length: 100 }, (_, i) => i + 1), 50), 50);
  const good = checkHistory(correctHistory());
  const bad = correctHistory();
  bad.seed = 43;
  partition(bad, 0).replicas[2].batches.pop();
  const results = [good, checkHistory(bad)];
  const summary = summarizeRuns(results);
  assert.equal(summary.schedules, 2);
  assert.deepEqual(summary.seeds, [42, 43]);
  assert.equal(summary.acked, 40);
  assert.equal(summary.divergent, 1);
  assert.deepEqual(summary.faults, { killLeader: 2 });
  assert.equal(summary.killFailoverP99Ms, 5);
  assert.equal(summary.pauseFailoverP99Ms, null);
  const lines = formatSummary(results);
  const json = JSON.parse(lines[lines.length - 1]);
  assert.deepEqual(Object.keys(json).slice(0, 12), ['bench', 'schedules', 'seeds', 'acked', 'lost', 'duplicated', 'reordered', 'divergent', 'phantomReads', 'killFailoverP99Ms', 'pauseFailoverP99Ms', 'faults']);
  assert.equal(json.bench, 'faults');
  assert.ok(lines.some((l) => /seed 43 FAILED/.test(l)));
});
