/**
 * A real broker child process (`node --import tsx server/src/cli.ts start
 * --port 0 ...`) for the security tests, configured by command-line flags
 * as an operator would (`--auth-secret`, `--auth-public-key`, `--tls-cert`,
 * ...). Unlike test/e2e/harness/broker-process.ts it keeps every line of
 * stdout and stderr (the audit lines go to stderr) and reads the bound port
 * and scheme from the broker's own "listening on" line, so it also works
 * with TLS and needs no free-port guess.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const root = new URL('../..', import.meta.url).pathname;
/** tsx compiles the broker on start; a loaded 2-core machine needs a while. */
const START_TIMEOUT_MS = 60_000;

const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of live) child.kill('SIGKILL');
});

export class SecureBroker {
  readonly stdout: string[] = [];
  readonly stderr: string[] = [];
  private exited: Promise<void>;

  private constructor(private readonly child: ChildProcess, readonly dataDir: string, readonly scheme: 'http' | 'https', readonly port: number, exited: Promise<void>) {
    this.exited = exited;
  }

  /** Starts `runnel start --port 0 --data <tmp> ...args` and resolves once it listens. */
  static async start(args: string[], env: Record<string, string> = {}): Promise<SecureBroker> {
    const dataDir = mkdtempSync(join(tmpdir(), 'runnel-security-'));
    const child = spawn(process.execPath, ['--import', 'tsx', 'server/src/cli.ts', 'start', '--port', '0', '--data', dataDir, '--static-dir', '', ...args], {
      cwd: root,
      env: { ...process.env, RUNNEL_REQUIRE_NATIVE_UWS: '1', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    live.add(child);
    const stdout: string[] = [];
    const stderr: string[] = [];
    const lines = (into: string[]) => {
      let partial = '';
      return (chunk: Buffer) => {
        const parts = (partial + chunk.toString()).split('\n');
        partial = parts.pop() ?? '';
        into.push(...parts);
      };
    };
    child.stdout!.on('data', lines(stdout));
    child.stderr!.on('data', lines(stderr));
    const exited = new Promise<void>((resolve) => child.once('exit', () => { live.delete(child); resolve(); }));
    const deadline = Date.now() + START_TIMEOUT_MS;
    for (;;) {
      const m = stdout.map((l) => /listening on (https?):\/\/[^ ]*:(\d+) /.exec(l)).find((x) => x !== null);
      if (m) {
        const broker = new SecureBroker(child, dataDir, m[1] as 'http' | 'https', Number(m[2]), exited);
        broker.stdout.push(...stdout.splice(0));
        broker.stderr.push(...stderr.splice(0));
        child.stdout!.removeAllListeners('data').on('data', lines(broker.stdout));
        child.stderr!.removeAllListeners('data').on('data', lines(broker.stderr));
        return broker;
      }
      if (child.exitCode !== null || Date.now() > deadline) {
        child.kill('SIGKILL');
        rmSync(dataDir, { recursive: true, force: true });
        throw new Error(`broker did not start (exit ${child.exitCode})\n--- stdout ---\n${stdout.join('\n')}\n--- stderr ---\n${stderr.join('\n')}`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  get url(): string { return `${this.scheme}://127.0.0.1:${this.port}`; }
  get wsUrl(): string { return `${this.scheme === 'https' ? 'wss' : 'ws'}://127.0.0.1:${this.port}/v1/ws`; }
  get pid(): number { return this.child.pid!; }

  /** Everything the broker printed, for failure messages. */
  log(): string {
    return `--- broker stdout ---\n${this.stdout.slice(-60).join('\n')}\n--- broker stderr ---\n${this.stderr.slice(-60).join('\n')}`;
  }

  /** Resolves with the first stdout/stderr line (from `fromIndex` of `stream`) matching `pattern`. */
  async waitForLine(stream: 'stdout' | 'stderr', pattern: RegExp, fromIndex = 0, timeoutMs = 10_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this[stream].slice(fromIndex).find((l) => pattern.test(l));
      if (found !== undefined) return found;
      if (Date.now() > deadline) throw new Error(`no ${stream} line matching ${pattern} within ${timeoutMs} ms\n${this.log()}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  signal(signal: NodeJS.Signals): void {
    this.child.kill(signal);
  }

  /** SIGTERM (graceful), SIGKILL after 5 s; removes the data dir. */
  async stop(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      this.child.kill('SIGTERM');
      const timer = setTimeout(() => this.child.kill('SIGKILL'), 5000);
      await this.exited;
      clearTimeout(timer);
    }
    rmSync(this.dataDir, { recursive: true, force: true });
  }
}
