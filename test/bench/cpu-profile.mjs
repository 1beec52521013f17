/**
 * CPU profiles of a process, loaded with `--import` from NODE_OPTIONS (Node
 * 20 refuses `--cpu-prof` there, and LocalCluster passes brokers only the
 * export conditions on their command line). `cluster.bench.ts` sets it for
 * every broker with BENCH_CPU_PROF=<dir>:
 *   NODE_OPTIONS="--import=/abs/test/bench/cpu-profile.mjs" RUNNEL_CPU_PROF_DIR=<dir>
 * Each SIGUSR2 toggles the profiler: the first starts it, the next stops it
 * and writes `<dir>/<pid>-<n>.cpuprofile` (Chrome DevTools, speedscope), so a
 * benchmark profiles exactly one phase and not the start-up compile. A
 * profile still running at exit is written then. NB: a main-thread inspector
 * session answers `post` synchronously, which is what lets the 'exit'
 * handler (synchronous only) stop the profiler and write the file.
 */
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';
import { join } from 'node:path';

const dir = process.env.RUNNEL_CPU_PROF_DIR;
if (dir) {
  const session = new Session();
  session.connect();
  session.post('Profiler.enable');
  session.post('Profiler.setSamplingInterval', { interval: Number(process.env.RUNNEL_CPU_PROF_INTERVAL_US ?? 500) });
  let running = false;
  let written = 0;
  const stop = () => {
    running = false;
    session.post('Profiler.stop', (error, result) => {
      if (error) console.error(`cpu-profile: ${error.message}`);
      else writeFileSync(join(dir, `${process.pid}-${++written}.cpuprofile`), JSON.stringify(result.profile));
    });
  };
  process.on('SIGUSR2', () => {
    if (running) return stop();
    running = true;
    session.post('Profiler.start');
  });
  process.on('exit', () => {
    if (running) stop();
  });
}
