import assert from 'node:assert/strict';
import { test } from 'node:test';
import { episodesOf, parseTrace, summarizeEpisodes } from './stall-episodes.ts';

test('late records within 5 ms of each other form one episode, spanning from the earliest send', () => {
  const e = episodesOf([{ atMs: 100, latencyMs: 8 }, { atMs: 103, latencyMs: 12 }, { atMs: 120, latencyMs: 7 }], []);
  assert.equal(e.length, 2);
  assert.deepEqual({ ...e[0], stalls: undefined }, { startMs: 91, endMs: 103, records: 2, maxLatencyMs: 12, stalls: undefined });
  assert.equal(e[1].records, 1);
});

test('a stall counts for an episode only when it overlaps it, and explains it only when at least half as long', () => {
  const trace = 'GC 7 95 10\nLATE 103 12\nLAG 8 104 3\nnoise\nLAG 9 200 50\n';
  const { late, stalls } = parseTrace(trace);
  assert.deepEqual(late, [{ atMs: 103, latencyMs: 12 }]);
  assert.equal(stalls.length, 3);
  const e = episodesOf([{ atMs: 103, latencyMs: 12 }], stalls);
  assert.deepEqual(e[0].stalls.map((s) => s.pid), [7]);
  assert.match(summarizeEpisodes(e, (pid) => `p${pid}`), /1 episodes .* 1 overlap .*\(p7 GC 1\).* other 0/);
  const short = episodesOf([{ atMs: 103, latencyMs: 30 }], stalls);
  assert.match(summarizeEpisodes(short, String), /0 overlap .*\(none\).* other 1 had no process/);
});
