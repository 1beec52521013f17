/**
 * Late records grouped into episodes, each matched with the GC pauses and
 * event-loop stalls (stall-trace.mjs) that overlap it: tells a latency tail
 * caused by one process stopping (a pause as long as the episode) from one
 * built of several short waits along the path (no such pause). Pure.
 */

/** A record seen `latencyMs` after it was sent, at `atMs` (shared wall clock). */
export interface LateRecord { atMs: number; latencyMs: number }
/** A process that stopped (GC pause or event-loop stall) for `ms` from `atMs`. */
export interface Stall { kind: 'GC' | 'LAG'; pid: number; atMs: number; ms: number }
export interface Episode { startMs: number; endMs: number; records: number; maxLatencyMs: number; stalls: Stall[] }

/** Records later than this many ms apart start a new episode. */
const EPISODE_GAP_MS = 5;

/** `late` in arrival order; an episode spans from the earliest send of its records to its last arrival. */
export function episodesOf(late: readonly LateRecord[], stalls: readonly Stall[]): Episode[] {
  const episodes: Episode[] = [];
  for (const r of late) {
    const e = episodes.at(-1);
    if (e && r.atMs - e.endMs < EPISODE_GAP_MS) {
      e.endMs = r.atMs;
      e.records++;
      e.maxLatencyMs = Math.max(e.maxLatencyMs, r.latencyMs);
      e.startMs = Math.min(e.startMs, r.atMs - r.latencyMs);
    } else {
      episodes.push({ startMs: r.atMs - r.latencyMs, endMs: r.atMs, records: 1, maxLatencyMs: r.latencyMs, stalls: [] });
    }
  }
  for (const e of episodes) e.stalls = stalls.filter((s) => s.atMs < e.endMs && s.atMs + s.ms > e.startMs);
  return episodes;
}

/**
 * One pass over a trace file: the `LATE <wallMs> <latencyMs>` lines sdk-clients.ts writes and the
 * `GC|LAG <pid> <wallMs> <ms>` lines of stall-trace.mjs (other lines are skipped).
 */
export function parseTrace(text: string): { late: LateRecord[]; stalls: Stall[] } {
  const late: LateRecord[] = [], stalls: Stall[] = [];
  for (const line of text.split('\n')) {
    const f = line.split(' ');
    if (f[0] === 'LATE' && f.length === 3) late.push({ atMs: Number(f[1]), latencyMs: Number(f[2]) });
    else if ((f[0] === 'GC' || f[0] === 'LAG') && f.length === 4) stalls.push({ kind: f[0], pid: Number(f[1]), atMs: Number(f[2]), ms: Number(f[3]) });
  }
  return { late, stalls };
}

/** One line: how many episodes, how many overlap a stall of at least half their length (which could explain them). */
export function summarizeEpisodes(episodes: readonly Episode[], nameOf: (pid: number) => string): string {
  if (episodes.length === 0) return 'no late records';
  let explained = 0;
  const byProcess = new Map<string, number>();
  for (const e of episodes) {
    const causes = e.stalls.filter((s) => s.ms >= e.maxLatencyMs / 2);
    if (causes.length > 0) explained++;
    for (const s of causes) {
      const key = `${nameOf(s.pid)} ${s.kind}`;
      byProcess.set(key, (byProcess.get(key) ?? 0) + 1);
    }
  }
  const records = episodes.reduce((n, e) => n + e.records, 0);
  const worst = Math.max(...episodes.map((e) => e.maxLatencyMs));
  const causes = [...byProcess].map(([k, n]) => `${k} ${n}`).join(', ') || 'none';
  return `${episodes.length} episodes (${records} records, worst ${worst.toFixed(1)} ms); ${explained} overlap a GC pause or event-loop stall of at least half their latency (${causes}); the other ${episodes.length - explained} had no process stopped that long`;
}
