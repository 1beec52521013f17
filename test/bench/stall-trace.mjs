/**
 * Stall trace of a process, loaded with `--import` from NODE_OPTIONS
 * (cluster.bench.ts sets it for every broker and client with
 * BENCH_STALL_TRACE=1): appends to RUNNEL_STALL_TRACE_FILE one line per GC
 * pause of at least 1 ms (`GC <pid> <wallMs> <ms>`) and per event-loop stall
 * of at least 5 ms (`LAG <pid> <wallMs> <ms>`: a 2 ms interval that fired that
 * late), timed on the clock the bench processes share (Date.now() to sub-ms,
 * as sdk-clients.ts: performance.timeOrigin differed by up to 18 ms between
 * two processes here). stall-episodes.ts matches them with late records.
 * NB: the 2 ms interval is itself ~500 wake-ups/s per process.
 */
import { appendFileSync } from 'node:fs';
import { PerformanceObserver, performance } from 'node:perf_hooks';

const file = process.env.RUNNEL_STALL_TRACE_FILE;
if (file) {
  let offset = -Infinity;
  for (const end = performance.now() + 30; performance.now() < end;) offset = Math.max(offset, Date.now() - performance.now());
  const wall = (t) => (t + offset).toFixed(2);
  new PerformanceObserver((list) => {
    const lines = [];
    for (const e of list.getEntries()) if (e.duration >= 1) lines.push(`GC ${process.pid} ${wall(e.startTime)} ${e.duration.toFixed(2)}\n`);
    if (lines.length > 0) appendFileSync(file, lines.join(''));
  }).observe({ entryTypes: ['gc'] });
  let last = performance.now();
  setInterval(() => {
    const now = performance.now();
    if (now - last >= 5 + 2) appendFileSync(file, `LAG ${process.pid} ${wall(last)} ${(now - last - 2).toFixed(2)}\n`);
    last = now;
  }, 2).unref();
}
