/**
 * Terminal output for the CLI with node built-ins only: aligned tables for
 * people, one JSON document (or NDJSON line) for scripts (`--json`), and
 * progress on stderr that never mixes into stdout.
 */
import { stderr, stdout } from 'node:process';

export interface Output {
  readonly json: boolean;
  /** Prints `data` as JSON in --json mode, else calls `human()`. */
  result(data: unknown, human: () => void): void;
  line(text: string): void;
  table(headers: string[], rows: (string | number)[][]): void;
  /** Progress line on stderr: rewritten in place on a TTY, throttled lines otherwise. */
  progress(text: string): void;
  endProgress(): void;
}

const NON_TTY_PROGRESS_MS = 5000;

export function createOutput(json: boolean): Output {
  let lastProgressAt = 0;
  let progressShown = false;
  return {
    json,
    result(data, human) {
      if (json) stdout.write(`${JSON.stringify(data)}\n`);
      else human();
    },
    line(text) {
      stdout.write(`${text}\n`);
    },
    table(headers, rows) {
      const cells = [headers, ...rows.map((r) => r.map(String))];
      const widths = headers.map((_, i) => Math.max(...cells.map((r) => r[i].length)));
      for (const row of cells) stdout.write(`${row.map((c, i) => (i === row.length - 1 ? c : c.padEnd(widths[i]))).join('  ')}\n`);
    },
    progress(text) {
      const now = Date.now();
      if (stderr.isTTY) {
        stderr.write(`\r${text}\x1b[K`);
        progressShown = true;
      } else if (now - lastProgressAt >= NON_TTY_PROGRESS_MS) {
        lastProgressAt = now;
        stderr.write(`${text}\n`);
      }
    },
    endProgress() {
      if (progressShown) stderr.write('\n');
      progressShown = false;
    },
  };
}

/** 604800000 → "7d", -1 → "forever". */
export function formatDurationMs(ms: number): string {
  if (ms < 0) return 'forever';
  for (const [unit, size] of [['d', 86_400_000], ['h', 3_600_000], ['m', 60_000], ['s', 1000]] as const) {
    if (ms >= size && ms % size === 0) return `${ms / size}${unit}`;
  }
  return `${ms}ms`;
}

export function formatBytes(bytes: number): string {
  if (bytes < 0) return 'unbounded';
  for (const [unit, size] of [['GiB', 2 ** 30], ['MiB', 2 ** 20], ['KiB', 2 ** 10]] as const) {
    if (bytes >= size) return `${+(bytes / size).toFixed(1)}${unit}`;
  }
  return `${bytes}B`;
}
