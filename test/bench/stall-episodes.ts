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

/** Parses the `LATE <wallMs> <latencyMs>` lines sdk-clients.ts writes (others are skipped). */
export function parseLate(text: string): LateRecord[] {
  const out: LateRecord[] = [];
  for (const line of text.split('\n')) {
    const [kind, at, ms] = line.split(' ');
    if (kind === 'LATE' && ms !== undefined) out.push({ atMs: Number(at), latencyMs: Number(ms) });
  }
  return out;
}

/** Parses stall-trace.mjs lines (others are skipped). */
export function parseStalls(text: string): Stall[] {
  const out: Stall[] = [];
  for (const line of text.split('\n')) {
    const [kind, pid, at, ms] = line.split(' ');
    if ((kind === 'GC' || kind === 'LAG') && ms !== undefined) out.push({ kind, pid: Number(pid), atMs: Number(at), ms: Number(ms) });
  }
  return out;
}

/** One line: how many episodes, how many overlap a stall of at least half their length (which could explain them). */
export function summarizeEpisodes(episodes: readonly Episode[], nameOf: (pid: number) => string): string {
  if (episodes.length === 0) return 'no late records';
  const explained = episodes.filter((e) => e.stalls.some((s) => s.ms >= e.maxLatencyMs / 2));
  const byProcess = new Map<string, number>();
  for (const e of explained) for (const s of e.stalls) if (s.ms >= e.maxLatencyMs / 2) byProcess.set(`${nameOf(s.pid)} ${s.kind}`, (byProcess.get(`${nameOf(s.pid)} ${s.kind}`) ?? 0) + 1);
  const records = episodes.reduce((n, e) => n + e.records, 0);
  const worst = Math.max(...episodes.map((e) => e.maxLatencyMs));
  const causes = [...byProcess].map(([k, n]) => `${k} ${n}`).join(', ') || 'none';
  return `${episodes.length} episodes (${records} records, worst ${worst.toFixed(1)} ms); ${explained.length} overlap a GC pause or event-loop stall of at least half their latency (${causes}); the other ${episodes.length - explained.length} had no process stopped that long`;
}
