/**
 * The broker's file-descriptor budget (issue 11, finding 3). Every WebSocket
 * connection holds a socket, every open segment file (`maxOpenFiles`, the
 * FileHandleCache) a descriptor, and the process has `ulimit -n` of them;
 * past it `accept` fails with EMFILE (uWS's loop then spins on the listen
 * socket and new handshakes and `/healthz` time out) and so do opens (topic
 * creation, produce). So at start-up:
 *
 *   maxConnections + maxOpenFiles + reserve <= soft RLIMIT_NOFILE
 *
 * `planFdBudget` (pure) keeps limits that fit and lowers the ones that do not
 * (the defaults, 100,000 connections and 1,024 files, fit only a large limit):
 * maxOpenFiles to at most a quarter of what the reserve leaves
 * (FD_OPEN_FILES_DIVISOR), maxConnections to the rest. The reserve and the
 * shares are named in limits.ts. `readFdLimit` reads the soft limit from
 * `/proc/self/limits` (Linux), else assumes FALLBACK_FD_LIMIT.
 * `reportFileHandles` turns the cache's events into the
 * `runnel_open_segment_files` gauge, the `runnel_file_open_failures_total`
 * counter and rate-bounded log lines (FD_EXHAUSTED_LOG_INTERVAL_MS).
 *
 * NB: Node raises its soft limit to the hard one at start, so the soft limit
 * read here is normally the hard limit (`ulimit -Hn`). HTTP connections (SSE
 * streams, long polls) are not counted by maxConnections: the reserve holds them.
 */
import { readFileSync } from 'node:fs';
import { ConfigError } from './config-error.ts';
import {
  defaultLimits, FALLBACK_FD_LIMIT, FD_EXHAUSTED_LOG_INTERVAL_MS, FD_OPEN_FILES_DIVISOR, FD_RESERVE_DIVISOR, FD_RESERVE_MIN, type Limits,
} from './limits.ts';
import type { DescriptorErrno, FileHandleCache } from './log/file-handle-cache.ts';
import type { RunnelMetrics } from './metrics.ts';

/** LimitsSchema's minimum maxOpenFiles: a budget that cannot hold it (and one connection) refuses to start. */
const MIN_OPEN_FILES = 16;

export interface FdLimit {
  /** Soft RLIMIT_NOFILE (Infinity for "unlimited"). */
  soft: number;
  source: '/proc/self/limits' | 'fallback';
}

/** The soft "Max open files" of a `/proc/<pid>/limits` text (Infinity for unlimited); null when the line is missing or unreadable. */
export function parseOpenFilesLimit(procLimits: string): number | null {
  const line = procLimits.split('\n').find((l) => l.startsWith('Max open files'));
  const soft = line?.slice('Max open files'.length).trim().split(/\s+/)[0];
  if (soft === 'unlimited') return Infinity;
  const n = Number(soft);
  return soft !== undefined && Number.isSafeInteger(n) && n > 0 ? n : null;
}

/** The process's soft open-file limit; FALLBACK_FD_LIMIT where `/proc/self/limits` cannot be read (not Linux). */
export function readFdLimit(read: () => string = () => readFileSync('/proc/self/limits', 'utf8')): FdLimit {
  let soft: number | null = null;
  try {
    soft = parseOpenFilesLimit(read());
  } catch {
    soft = null;
  }
  return soft === null ? { soft: FALLBACK_FD_LIMIT, source: 'fallback' } : { soft, source: '/proc/self/limits' };
}

/** Descriptors kept for what neither limit counts (see FD_RESERVE_MIN in limits.ts). */
export function fdReserve(fdLimit: number): number {
  return Number.isFinite(fdLimit) ? Math.max(FD_RESERVE_MIN, Math.floor(fdLimit / FD_RESERVE_DIVISOR)) : FD_RESERVE_MIN;
}

/** The smallest limit that holds `maxConnections + maxOpenFiles` and its reserve (what to tell the operator to set). */
export function fdLimitFor(maxConnections: number, maxOpenFiles: number): number {
  const needed = maxConnections + maxOpenFiles;
  // NB: limit − fdReserve(limit) grows with limit; this start is at or just below the answer.
  let limit = Math.max(needed + FD_RESERVE_MIN, Math.floor((needed * FD_RESERVE_DIVISOR) / (FD_RESERVE_DIVISOR - 1)) - 1);
  while (limit - fdReserve(limit) < needed) limit++;
  return limit;
}

export interface FdBudget {
  fdLimit: number;
  reserve: number;
  maxConnections: number;
  maxOpenFiles: number;
  /** The values asked for, when lowered to fit; null when they fit as asked. */
  lowered: { maxConnections: number; maxOpenFiles: number } | null;
}

/** Fits the two limits into `fdLimit` minus the reserve (pure). Not ok when even MIN_OPEN_FILES and one connection do not fit. */
export function planFdBudget(asked: Pick<Limits, 'maxConnections' | 'maxOpenFiles'>, fdLimit: number): { ok: true; value: FdBudget } | { ok: false; message: string } {
  const reserve = fdReserve(fdLimit);
  const available = fdLimit - reserve;
  if (available < MIN_OPEN_FILES + 1) {
    return { ok: false, message: `the open-file limit (ulimit -n) is ${fdLimit}: the broker needs ${reserve} descriptors in reserve plus at least ${MIN_OPEN_FILES} segment files and one connection; raise it to at least ${fdLimitFor(1, MIN_OPEN_FILES)} (ulimit -n, systemd LimitNOFILE=, docker --ulimit nofile=)` };
  }
  if (asked.maxConnections + asked.maxOpenFiles <= available) {
    return { ok: true, value: { fdLimit, reserve, maxConnections: asked.maxConnections, maxOpenFiles: asked.maxOpenFiles, lowered: null } };
  }
  const openFilesShare = Math.max(MIN_OPEN_FILES, Math.floor(available / FD_OPEN_FILES_DIVISOR));
  // Files may take what the connections asked for leaves, but keep their share when the connections want it all.
  const maxOpenFiles = Math.min(asked.maxOpenFiles, Math.max(openFilesShare, available - asked.maxConnections));
  const maxConnections = Math.min(asked.maxConnections, available - maxOpenFiles);
  return { ok: true, value: { fdLimit, reserve, maxConnections, maxOpenFiles, lowered: { maxConnections: asked.maxConnections, maxOpenFiles: asked.maxOpenFiles } } };
}

export interface FittedLimits {
  limits: Limits;
  budget: FdBudget;
  /** The start-up line (`log` it, or `warn` it when `isWarning`). */
  line: string;
  /** Limits set explicitly (not the defaults) were lowered. */
  isWarning: boolean;
}

/**
 * The start-up check: `limits` with maxConnections and maxOpenFiles fitted to
 * the descriptor budget, and the line saying so. Throws ConfigError when the
 * limit is too low to run at all.
 * @example const { limits, line } = fitLimitsToFdBudget(validateLimits(config.limits), readFdLimit()); log(line);
 */
export function fitLimitsToFdBudget(limits: Limits, fdLimit: FdLimit): FittedLimits {
  const plan = planFdBudget(limits, fdLimit.soft);
  if (!plan.ok) throw new ConfigError(plan.message);
  const budget = plan.value;
  const source = fdLimit.source === 'fallback' ? `assumed: /proc/self/limits unreadable` : 'soft RLIMIT_NOFILE';
  const head = `runnel: file descriptors: limit ${budget.fdLimit} (${source}): maxConnections ${budget.maxConnections}, maxOpenFiles ${budget.maxOpenFiles}, reserve ${budget.reserve}`;
  if (budget.lowered === null) return { limits, budget, line: head, isWarning: false };
  const asked = budget.lowered;
  const isDefault = asked.maxConnections === defaultLimits.maxConnections && asked.maxOpenFiles === defaultLimits.maxOpenFiles;
  const line = `${head} (${isDefault ? 'derived: the defaults' : 'WARNING: lowered: the configured'} maxConnections ${asked.maxConnections} and maxOpenFiles ${asked.maxOpenFiles} do not fit; to keep them raise the limit to ${fdLimitFor(asked.maxConnections, asked.maxOpenFiles)}: ulimit -n, systemd LimitNOFILE=, docker --ulimit nofile=)`;
  return { limits: { ...limits, maxConnections: budget.maxConnections, maxOpenFiles: budget.maxOpenFiles }, budget, line, isWarning: !isDefault };
}

/**
 * Rate-bounded "out of descriptors" lines (pure; time comes in as `nowMs`):
 * at most one per `intervalMs`, saying how many refusals it stands for.
 */
export class DescriptorShortageLog {
  #lastLineMs = Number.NEGATIVE_INFINITY;
  #unreported = 0;

  constructor(private readonly write: (line: string) => void, private readonly intervalMs = FD_EXHAUSTED_LOG_INTERVAL_MS) {}

  report(refusal: { errno: DescriptorErrno; path: string }, nowMs: number): void {
    this.#unreported++;
    if (nowMs - this.#lastLineMs < this.intervalMs) return;
    const n = this.#unreported;
    this.#unreported = 0;
    this.#lastLineMs = nowMs;
    const scope = refusal.errno === 'ENFILE' ? 'the system is out of file descriptors (ENFILE)' : 'the broker is out of file descriptors (EMFILE)';
    this.write(`runnel: WARNING: ${scope}: ${n === 1 ? 'an open was' : `${n} opens were`} refused with LIMIT_EXCEEDED (retryable), last ${refusal.path}; raise the open-file limit (ulimit -n) or lower maxConnections/maxOpenFiles (runnel_file_open_failures_total counts every refusal)`);
  }
}

/** Wires `files`' events to the metrics and a rate-bounded `warn` line. Returns the function that unwires it. */
export function reportFileHandles(files: FileHandleCache, deps: { metrics?: RunnelMetrics; warn: (line: string) => void; nowMs?: () => number }): () => void {
  const lines = new DescriptorShortageLog(deps.warn);
  const nowMs = deps.nowMs ?? Date.now;
  deps.metrics?.openSegmentFiles.set(files.openFiles);
  return files.observe({
    openFilesChanged: (n) => deps.metrics?.openSegmentFiles.set(n),
    openRefused: (refusal) => {
      deps.metrics?.fileOpenFailures.inc({ errno: refusal.errno });
      lines.report(refusal, nowMs());
    },
  });
}
