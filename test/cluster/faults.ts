/**
 * The fault-injection runner: `npm run test:faults -- --schedules N [--seed S]`
 * runs N randomized schedules (seeds S, S+1, …; S random and printed when not
 * given) on one real cluster (etcd + 3 brokers through fault proxies), checks
 * each history, and prints a summary whose last line is the JSON the issue
 * asks for. Exit status 1 on any violation or aborted schedule.
 *
 * Replay: `--seed S --schedules 1` runs exactly schedule S (with the same
 * options). NB: schedules share one cluster (fresh topic each) unless
 * `--fresh-cluster`; a failure that depended on earlier schedules' leftovers
 * replays only in the same sequence (`--seed <first> --schedules N`).
 * A failing schedule's history is written to test/artifacts/faults-<seed>.json.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { formatSummary, type CheckResult } from './history-checker.ts';
import { FAULT_KINDS, type FaultKind, type History } from './history.ts';
import { ClusterHarness, FAULT_BROKER_LIMITS } from './harness.ts';
import { faultSchedule, scheduleSeeds, type ScheduleOptions } from './fault-schedule.ts';
import { runSchedule } from './run-schedule.ts';

export interface FaultsOptions {
  schedules: number;
  seed: number;
  steps: number;
  kinds: readonly FaultKind[];
  partitions: number;
  ratePerSec: number;
  freshCluster: boolean;
  log: (line: string) => void;
  /** Where failing histories are written (default test/artifacts). */
  artifactsDir?: string;
}

export interface FaultsReport {
  results: CheckResult[];
  /** Schedules that could not finish (a wait timed out, a broker would not start): seed and error. */
  aborted: { seed: number; error: string }[];
  /** Summary lines; the last is the JSON line. */
  lines: string[];
  ok: boolean;
}

/** Failovers slower than this print their client errors (and, with RUNNEL_FAULTS_SLOW_LOGS=1, broker logs and history), never a failure by itself; RUNNEL_FAULTS_SLOW_MS sets it. */
const SLOW_FAILOVER_MS = Number(process.env.RUNNEL_FAULTS_SLOW_MS ?? 10_000);
const ARTIFACTS_DIR = fileURLToPath(new URL('../artifacts', import.meta.url));

/** The history as JSON, replica bytes as base64 (so a failure can be inspected and re-checked). */
function historyJson(history: History, clientErrors: readonly string[], brokers: { id: number; url: string }[]): string {
  return JSON.stringify({ ...history, brokers, clientErrors }, (_key, value) => (value instanceof Uint8Array ? Buffer.from(value).toString('base64') : value));
}

export async function runFaults(options: FaultsOptions): Promise<FaultsReport> {
  const { log } = options;
  const seeds = scheduleSeeds(options.seed, options.schedules);
  log(`faults: ${options.schedules} schedules from seed ${options.seed} (replay: npm run test:faults -- --seed ${options.seed} --schedules ${options.schedules}${options.steps !== 2 ? ` --steps ${options.steps}` : ''})`);
  const scheduleOptions: Partial<ScheduleOptions> = {
    steps: options.steps, kinds: options.kinds, partitions: options.partitions, ratePerSec: options.ratePerSec,
    brokerLeaseTtlMs: FAULT_BROKER_LIMITS.brokerLeaseTtlMs,
  };
  const results: CheckResult[] = [];
  const aborted: { seed: number; error: string }[] = [];
  let harness: ClusterHarness | undefined;
  try {
    for (const seed of seeds) {
      harness ??= await ClusterHarness.start({ log });
      const schedule = faultSchedule(seed, scheduleOptions);
      try {
        const run = await runSchedule(harness, schedule, log);
        const r = run.result;
        results.push(r);
        const failovers = r.failovers.map((f) => `failover p${f.partition} ${Math.round(f.ms)} ms${f.recovered ? '' : ' (never)'}${f.electedMs === undefined ? '' : ` (elected ${Math.round(f.electedMs)} ms)`}`).join(', ');
        log(`seed ${seed}: ${r.ok ? 'ok' : 'FAILED'}; acked ${r.acked}, delivered ${run.history.deliveries.length}; ${failovers || 'no failover measured'}; ${Math.round(run.durationMs / 1000)} s`);
        // A failover that took over 10 s is no violation but worth a look: its client errors say what held the writes.
        const slow = r.failovers.some((f) => f.ms > SLOW_FAILOVER_MS) || process.env.RUNNEL_FAULTS_ALL_HISTORY === '1';
        if (r.ok && slow) {
          for (const e of run.notes.clientErrors.slice(0, 20)) log(`    slow failover, client: ${e}`);
          if (process.env.RUNNEL_FAULTS_SLOW_LOGS === '1') {
            log(harness.logs());
            const dir = options.artifactsDir ?? ARTIFACTS_DIR;
            mkdirSync(dir, { recursive: true });
            const file = join(dir, `faults-${seed}-slow.json`);
            writeFileSync(file, historyJson(run.history, run.notes.clientErrors, harness.nodes.map((n) => ({ id: n.id, url: n.url }))));
            log(`    history: ${file}`);
          }
        }
        if (!r.ok) {
          for (const m of r.messages) log(`    ${m}`);
          log(`    pending at stop ${run.notes.pendingAtStop}; consumers behind: ${run.notes.consumersBehind.join(', ') || 'none'}`);
          for (const e of run.notes.clientErrors.slice(0, 10)) log(`    client: ${e}`);
          const dir = options.artifactsDir ?? ARTIFACTS_DIR;
          mkdirSync(dir, { recursive: true });
          const file = join(dir, `faults-${seed}.json`);
          writeFileSync(file, historyJson(run.history, run.notes.clientErrors, harness.nodes.map((n) => ({ id: n.id, url: n.url }))));
          log(`    history: ${file}`);
        }
      } catch (error) {
        const message = error instanceof Error ? (error.stack ?? error.message) : String(error);
        aborted.push({ seed, error: message.split('\n')[0] });
        log(`seed ${seed}: ABORTED: ${message}`);
        // The cluster may be wedged: the next schedule gets a fresh one.
        await harness.stop().catch(() => {});
        harness = undefined;
        continue;
      }
      if (options.freshCluster) {
        await harness.stop();
        harness = undefined;
      }
    }
  } finally {
    await harness?.stop();
  }
  const lines = formatSummary(results);
  const json = JSON.parse(lines.pop()!) as Record<string, unknown>;
  for (const a of aborted) lines.push(`  seed ${a.seed} ABORTED: ${a.error}`);
  lines.push(JSON.stringify({ ...json, aborted: aborted.length }));
  return { results, aborted, lines, ok: aborted.length === 0 && results.every((r) => r.ok) };
}

function parseKinds(text: string | undefined): readonly FaultKind[] {
  if (text === undefined) return FAULT_KINDS;
  const kinds = text.split(',').map((k) => k.trim()).filter(Boolean);
  for (const k of kinds) if (!FAULT_KINDS.includes(k as FaultKind)) throw new Error(`--kinds: unknown fault '${k}' (known: ${FAULT_KINDS.join(', ')})`);
  return kinds as FaultKind[];
}

function int(name: string, text: string | undefined, fallback: number): number {
  if (text === undefined) return fallback;
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n < 0) throw new Error(`--${name} must be a non-negative integer, got '${text}'`);
  return n;
}

async function main(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      schedules: { type: 'string' }, seed: { type: 'string' }, steps: { type: 'string' }, kinds: { type: 'string' },
      partitions: { type: 'string' }, rate: { type: 'string' }, 'fresh-cluster': { type: 'boolean' },
    },
  });
  const t0 = Date.now();
  const seed = int('seed', values.seed, Math.floor(Math.random() * 2 ** 31));
  const report = await runFaults({
    schedules: int('schedules', values.schedules, 10), seed, steps: int('steps', values.steps, 2), kinds: parseKinds(values.kinds),
    partitions: int('partitions', values.partitions, 2), ratePerSec: int('rate', values.rate, 200), freshCluster: values['fresh-cluster'] === true,
    log: (line) => void process.stderr.write(`${((Date.now() - t0) / 1000).toFixed(1).padStart(7)} ${line}\n`),
  });
  for (const line of report.lines) console.log(line);
  process.exitCode = report.ok ? 0 : 1;
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) await main(process.argv.slice(2));
