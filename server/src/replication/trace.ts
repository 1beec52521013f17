/**
 * Debug instrument of the replication path (off unless RUNNEL_REPLICATION_TRACE=<ms> is set):
 * per-stage latency samples, printed to stderr as p50/p90/p99/max every <ms> and reset, e.g.
 *   [replication-trace broker 2] leader.replicationWait n=4800 p50 1.9 p90 3.1 p99 6.0 max 9.2 ms
 * Stages (docs/cluster.md "Where the milliseconds go"): leader.localAppend (append arrives →
 * written and fdatasync'ed here), leader.replicationWait (local durable → the high watermark
 * covers it: the ack), leader.toFollowerDurable.<id> (a write here → that follower's fetch
 * reports it durable), leader.hwToFollower.<id> (the high watermark advances → an answer
 * carrying it leaves for that follower), leader.fetchHeld, follower.fetchRoundTrip,
 * follower.appendDurable (an answer's batches written and fdatasync'ed).
 * Cost when off: one boolean test per batch or fetch. Each stage keeps at most
 * MAX_SAMPLES_PER_STAGE samples per interval.
 */
const intervalMs = Number(process.env.RUNNEL_REPLICATION_TRACE ?? 0);

/** Whether the trace is on (tested before any clock read). */
export const isTracing = Number.isFinite(intervalMs) && intervalMs > 0;

const MAX_SAMPLES_PER_STAGE = 100_000;
const stages = new Map<string, number[]>();
let label = `pid ${process.pid}`;

/** Names this process in the printed lines (its broker id). */
export function setTraceLabel(name: string): void {
  label = name;
}

/** Wall-clock ms with sub-ms precision (comparable between processes on one machine). */
export function traceNowMs(): number {
  return performance.timeOrigin + performance.now();
}

export function traceStage(stage: string, ms: number): void {
  let samples = stages.get(stage);
  if (samples === undefined) stages.set(stage, (samples = []));
  if (samples.length < MAX_SAMPLES_PER_STAGE) samples.push(ms);
}

function print(): void {
  for (const [stage, samples] of [...stages].sort(([a], [b]) => a.localeCompare(b))) {
    if (samples.length === 0) continue;
    samples.sort((a, b) => a - b);
    const q = (p: number) => samples[Math.min(samples.length - 1, Math.floor(p * samples.length))].toFixed(2);
    process.stderr.write(`[replication-trace ${label}] ${stage} n=${samples.length} p50 ${q(0.5)} p90 ${q(0.9)} p99 ${q(0.99)} max ${samples[samples.length - 1].toFixed(2)} ms\n`);
  }
  stages.clear();
}

if (isTracing) setInterval(print, intervalMs).unref();
