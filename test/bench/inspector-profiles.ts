/**
 * Profiles of one part of a bench process (its measured window), through one
 * main-thread inspector session: a CPU profile and a sampled heap profile that
 * keeps the objects already collected (what a hot path allocates, not what it
 * retains). NB: a main-thread session answers `post` synchronously, so both
 * files are written when `stop` returns.
 */
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';

export interface ProfileFiles {
  /** Where the CPU profile goes (`.cpuprofile`); none without it. */
  cpu?: string;
  /** Where the heap profile goes (`.heapprofile`); none without it. */
  heap?: string;
  /** Mean bytes between heap samples (V8's samplingInterval). */
  heapSamplingBytes?: number;
}

/** Starts what `files` names; the function it returns stops both and writes them (once). */
export function startProfiles(files: ProfileFiles): () => void {
  const session = new Session();
  session.connect();
  if (files.cpu) {
    session.post('Profiler.enable');
    session.post('Profiler.start');
  }
  if (files.heap) {
    session.post('HeapProfiler.startSampling', { samplingInterval: files.heapSamplingBytes ?? 4096, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true });
  }
  let stopped = false;
  return () => {
    if (stopped) return;
    stopped = true;
    if (files.cpu) session.post('Profiler.stop', (error, result) => { if (!error) writeFileSync(files.cpu!, JSON.stringify(result.profile)); });
    if (files.heap) session.post('HeapProfiler.stopSampling', (error, result) => { if (!error) writeFileSync(files.heap!, JSON.stringify(result.profile)); });
    session.disconnect();
  };
}
