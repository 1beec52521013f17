import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { LeaderEpochCache, UNDEFINED_EPOCH, type EpochEntry } from './leader-epoch-cache.ts';
import { decodeLeaderEpochs, encodeLeaderEpochs, LEADER_EPOCH_FILE, readLeaderEpochs, writeLeaderEpochs } from './leader-epoch-checkpoint.ts';
import { MemoryLogDirectory } from './memory-segment-file.ts';

const UNDEFINED = { epoch: -1, endOffset: -1 };
const cacheOf = (...pairs: [number, number][]) => new LeaderEpochCache(pairs.map(([epoch, startOffset]) => ({ epoch, startOffset })));
const pairsOf = (c: LeaderEpochCache) => c.entries.map((e) => [e.epoch, e.startOffset]);

test('maybeAssign records only a real epoch above the latest; latestEpoch is -1 when empty', () => {
  const c = new LeaderEpochCache();
  assert.equal(c.latestEpoch, UNDEFINED_EPOCH);
  assert.equal(c.maybeAssign(-1, 0), false, 'unstamped batch (SDK default -1)');
  assert.equal(c.maybeAssign(0, 0), true);
  assert.equal(c.maybeAssign(0, 5), false, 'same epoch: its start stays the first offset');
  assert.equal(c.maybeAssign(2, 10), true);
  assert.equal(c.maybeAssign(1, 20), false, 'older epoch is not recorded');
  assert.equal(c.latestEpoch, 2);
  assert.deepEqual(pairsOf(c), [[0, 0], [2, 10]]);
  assert.equal(c.maybeAssign(3, 10), true, 'a start offset at or below a later entry drops it (non-monotonic)');
  assert.deepEqual(pairsOf(c), [[0, 0], [3, 10]]);
  assert.throws(() => cacheOf([1, 0], [1, 5]), /must increase/);
  assert.throws(() => cacheOf([1, 5], [2, 5]), /must increase/);
});

test('endOffsetFor: table (Kafka OffsetsForLeaderEpoch semantics; -1/-1 below the first entry)', () => {
  const c = cacheOf([1, 0], [3, 100], [4, 250]);
  const logEnd = 300;
  const cases: [epoch: number, want: { epoch: number; endOffset: number }][] = [
    [4, { epoch: 4, endOffset: logEnd }], // latest: the log end offset
    [3, { epoch: 3, endOffset: 250 }], // older: start of the next higher epoch
    [2, { epoch: 1, endOffset: 100 }], // unknown between: the largest epoch below it, ending where 3 starts
    [1, { epoch: 1, endOffset: 100 }],
    [0, UNDEFINED], // below the first entry
    [5, UNDEFINED], // above the latest
    [-1, UNDEFINED],
  ];
  for (const [epoch, want] of cases) assert.deepEqual(c.endOffsetFor(epoch, logEnd), want, `epoch ${epoch}`);
  assert.deepEqual(new LeaderEpochCache().endOffsetFor(0, 10), UNDEFINED, 'empty cache');
});

test('truncateFromEnd and truncateFromStart: table', () => {
  const base: [number, number][] = [[0, 0], [1, 100], [3, 200]];
  const fromEnd: [offset: number, want: [number, number][], changed: boolean][] = [
    [300, base, false], [201, base, false], [200, [[0, 0], [1, 100]], true], [150, [[0, 0], [1, 100]], true], [100, [[0, 0]], true], [0, [], true],
  ];
  for (const [offset, want, changed] of fromEnd) {
    const c = cacheOf(...base);
    assert.equal(c.truncateFromEnd(offset), changed, `fromEnd ${offset}`);
    assert.deepEqual(pairsOf(c), want, `fromEnd ${offset}`);
  }
  const fromStart: [offset: number, want: [number, number][], changed: boolean][] = [
    [0, base, false], [50, [[0, 50], [1, 100], [3, 200]], true], [100, [[1, 100], [3, 200]], true],
    [150, [[1, 150], [3, 200]], true], [500, [[3, 500]], true],
  ];
  for (const [offset, want, changed] of fromStart) {
    const c = cacheOf(...base);
    assert.equal(c.truncateFromStart(offset), changed, `fromStart ${offset}`);
    assert.deepEqual(pairsOf(c), want, `fromStart ${offset}`);
  }
});

/**
 * Model log: batches appended with the epoch of their leader (non-decreasing, -1 = never stamped),
 * truncated at batch boundaries (divergence) and retention-deleted from the start (never the last batch).
 */
type Op = { kind: 'append'; epochStep: number; records: number } | { kind: 'truncateEnd'; back: number } | { kind: 'truncateStart'; forward: number };
const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('append' as const), epochStep: fc.constantFrom(0, 0, 0, 1, 2), records: fc.integer({ min: 1, max: 20 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('truncateEnd' as const), back: fc.nat(40) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('truncateStart' as const), forward: fc.nat(40) }) },
);

test('property: the live cache equals a rebuild from the surviving batches and answers endOffsetFor like a scan', () => {
  fc.assert(fc.property(fc.array(opArb, { maxLength: 60 }), fc.integer({ min: -1, max: 40 }), (ops, asked) => {
    const cache = new LeaderEpochCache();
    let batches: { baseOffset: number; epoch: number }[] = [];
    let epoch = -1;
    let start = 0;
    let end = 0;
    for (const op of ops) {
      if (op.kind === 'append') {
        epoch += op.epochStep;
        cache.maybeAssign(epoch, end);
        batches.push({ baseOffset: end, epoch });
        end += op.records;
      } else if (op.kind === 'truncateEnd') {
        const cut = batches.filter((b) => b.baseOffset <= Math.max(start, end - op.back)).at(-1);
        if (!cut) continue;
        batches = batches.filter((b) => b.baseOffset < cut.baseOffset);
        end = cut.baseOffset;
        cache.truncateFromEnd(end);
      } else {
        const first = batches.filter((b) => b.baseOffset <= start + op.forward).at(-1);
        if (!first) continue;
        start = first.baseOffset;
        batches = batches.filter((b) => b.baseOffset >= start);
        cache.truncateFromStart(start);
      }
      const entries = cache.entries;
      for (let i = 1; i < entries.length; i++) assert.ok(entries[i].epoch > entries[i - 1].epoch && entries[i].startOffset > entries[i - 1].startOffset, 'monotonic');
      assert.ok(entries.every((e) => e.epoch >= 0 && e.startOffset >= start && e.startOffset < end), 'entries inside [logStartOffset, logEndOffset)');
    }
    // What a reopen without the file rebuilds (log-loader.ts): the surviving batches, cut to the log's range.
    const rebuilt = new LeaderEpochCache();
    for (const b of batches) rebuilt.maybeAssign(b.epoch, b.baseOffset);
    rebuilt.truncateFromStart(start);
    rebuilt.truncateFromEnd(end);
    assert.deepEqual(cache.entries, rebuilt.entries);
    assert.deepEqual(cache.endOffsetFor(asked, end), bruteEndOffsetFor(cache.entries, asked, end));
  }));
});

function bruteEndOffsetFor(entries: EpochEntry[], epoch: number, logEnd: number) {
  const latest = entries.at(-1);
  if (epoch < 0 || !latest || epoch < entries[0].epoch || epoch > latest.epoch) return UNDEFINED;
  if (epoch === latest.epoch) return { epoch, endOffset: logEnd };
  const floor = entries.filter((e) => e.epoch <= epoch).at(-1)!;
  const higher = entries.find((e) => e.epoch > epoch)!;
  return { epoch: floor.epoch, endOffset: higher.startOffset };
}

test('file format: Kafka leader-epoch-checkpoint text; round trip (property); malformed files decode to null', () => {
  assert.equal(new TextDecoder().decode(encodeLeaderEpochs([{ epoch: 0, startOffset: 0 }, { epoch: 3, startOffset: 42 }])), '0\n2\n0 0\n3 42\n');
  const entriesArb = fc.uniqueArray(fc.tuple(fc.integer({ min: 0, max: 0x7fff_ffff }), fc.nat({ max: Number.MAX_SAFE_INTEGER })), { maxLength: 20 })
    .map((pairs) => {
      const epochs = [...new Set(pairs.map((p) => p[0]))].sort((a, b) => a - b);
      const offsets = [...new Set(pairs.map((p) => p[1]))].sort((a, b) => a - b);
      return epochs.slice(0, offsets.length).map((epoch, i) => ({ epoch, startOffset: offsets[i] }));
    });
  fc.assert(fc.property(entriesArb, (entries) => {
    assert.deepEqual(decodeLeaderEpochs(encodeLeaderEpochs(entries))?.entries, entries);
  }));
  const bad = ['', '0\n', '1\n0\n', '0\n1\n', '0\n2\n0 0\n', '0\n1\n0 0', '0\n2\n1 5\n1 9\n', '0\n2\n1 9\n2 5\n', '0\n1\n-1 0\n', '0\n1\n0 x\n', '0\n1\n2147483648 0\n'];
  for (const text of bad) assert.equal(decodeLeaderEpochs(new TextEncoder().encode(text)), null, JSON.stringify(text));
});

test('persistence round trip through LogDirectory.writeAtomic; a missing or corrupt file reads as null', async () => {
  const dir = new MemoryLogDirectory();
  assert.equal(await readLeaderEpochs(dir), null);
  const c = cacheOf([0, 0], [2, 17], [5, 99]);
  await writeLeaderEpochs(dir, c);
  assert.deepEqual((await readLeaderEpochs(dir))?.entries, c.entries);
  assert.deepEqual((await readLeaderEpochs(dir.crash()))?.entries, c.entries, 'durable when the write resolves');
  dir.corrupt(LEADER_EPOCH_FILE, 2, new TextEncoder().encode('x'));
  assert.equal(await readLeaderEpochs(dir), null);
});
