/**
 * `runnel cluster --nodes 3 [--data DIR] [--port BASE]`: etcd and N brokers
 * on this machine (server/src/cluster/local-cluster.ts), for trying the
 * cluster out and for development; `npm run cluster` runs it. Prints a table
 * of the nodes and stays in the foreground; Ctrl-C (or SIGTERM) stops the
 * brokers gracefully, then etcd. Installs etcd (Debian `etcd-server`) when it
 * is missing, saying so. Reference: docs/cli.md.
 */
import { execSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { formatNodeTable, LocalCluster, MAX_LOCAL_NODES } from '../cluster/local-cluster.ts';
import { CliError } from './http-client.ts';
import type { Output } from './output.ts';

const USAGE = `runnel cluster [--nodes N] [--data DIR] [--port BASE] [--min-insync-replicas N] [--limit name=value]... [--verbose]
  N brokers (default 3, at most ${MAX_LOCAL_NODES}) and one etcd on 127.0.0.1; node i listens on BASE+2(i-1), replicates on BASE+2(i-1)+1
  (default: free ports); data in DIR/node-<id> and DIR/etcd (default: a temp dir, removed on exit). Ctrl-C stops everything.`;

const DEFAULT_NODES = 3;

/** The etcd binary `runnel cluster` runs (as EtcdProcess does). */
export function etcdBinary(env: NodeJS.ProcessEnv): string {
  return env.RUNNEL_ETCD_BIN ?? '/usr/bin/etcd';
}

/** Installs Debian's etcd-server when the etcd binary is missing (as `npm test` does), telling the user first. */
export function ensureEtcdInstalled(env: NodeJS.ProcessEnv, log: (line: string) => void): void {
  const bin = etcdBinary(env);
  if (existsSync(bin)) return;
  if (env.RUNNEL_ETCD_BIN !== undefined) throw new CliError('INVALID_REQUEST', `RUNNEL_ETCD_BIN=${bin} does not exist`);
  const sudo = process.getuid?.() === 0 ? '' : 'sudo ';
  const command = `${sudo}apt-get update && ${sudo}env DEBIAN_FRONTEND=noninteractive apt-get install -y etcd-server`;
  log(`runnel: etcd not found at ${bin}; installing the Debian package etcd-server: ${command}`);
  try {
    execSync(command, { stdio: 'inherit' });
  } catch (error) {
    throw new CliError('INVALID_REQUEST', `could not install etcd-server (${error instanceof Error ? error.message : String(error)}); install it yourself (apt-get install -y etcd-server) or set RUNNEL_ETCD_BIN`);
  }
  if (!existsSync(bin)) throw new CliError('INVALID_REQUEST', `etcd-server installed but ${bin} is missing; set RUNNEL_ETCD_BIN`);
}

function positiveInt(name: string, text: string | undefined, fallback?: number): number | undefined {
  if (text === undefined) return fallback;
  const n = Number(text);
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(n)) throw new CliError('INVALID_REQUEST', `--${name} must be a positive integer, got '${text}'`);
  return n;
}

export interface ClusterCommandOptions {
  nodes: number;
  rootDir?: string;
  basePort?: number;
  minInsyncReplicas?: number;
  brokerLimits: Record<string, string>;
  verbose: boolean;
}

export function parseClusterArgs(args: string[]): ClusterCommandOptions | 'help' {
  const { values, positionals } = parseArgs({
    args, allowPositionals: true,
    options: {
      nodes: { type: 'string' }, data: { type: 'string' }, port: { type: 'string' },
      'min-insync-replicas': { type: 'string' }, limit: { type: 'string', multiple: true },
      verbose: { type: 'boolean' }, help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) return 'help';
  if (positionals.length > 0) throw new CliError('INVALID_REQUEST', `unexpected argument '${positionals[0]}'\n${USAGE}`);
  const brokerLimits: Record<string, string> = {};
  for (const entry of values.limit ?? []) {
    const eq = entry.indexOf('=');
    if (eq <= 0) throw new CliError('INVALID_REQUEST', `--limit takes name=value, got '${entry}'`);
    brokerLimits[entry.slice(0, eq)] = entry.slice(eq + 1);
  }
  const nodes = positiveInt('nodes', values.nodes, DEFAULT_NODES)!;
  if (nodes < 1 || nodes > MAX_LOCAL_NODES) throw new CliError('INVALID_REQUEST', `--nodes must be 1-${MAX_LOCAL_NODES}, got ${nodes}`);
  return {
    nodes,
    ...(values.data === undefined ? {} : { rootDir: resolve(values.data) }),
    ...(values.port === undefined ? {} : { basePort: positiveInt('port', values.port) }),
    ...(values['min-insync-replicas'] === undefined ? {} : { minInsyncReplicas: positiveInt('min-insync-replicas', values['min-insync-replicas']) }),
    brokerLimits,
    verbose: values.verbose === true,
  };
}

export async function runClusterCommand(args: string[], out: Output, env: NodeJS.ProcessEnv = process.env): Promise<void> {
  const options = parseClusterArgs(args);
  if (options === 'help') return void out.line(USAGE);
  const say = (line: string): void => void process.stderr.write(`${line}\n`);
  ensureEtcdInstalled(env, say);
  say(`runnel: starting etcd and ${options.nodes} brokers${options.rootDir ? ` in ${options.rootDir}` : ''}…`);
  const cluster = await LocalCluster.start({
    nodes: options.nodes, rootDir: options.rootDir, basePort: options.basePort, minInsyncReplicas: options.minInsyncReplicas,
    brokerLimits: options.brokerLimits,
    onOutput: options.verbose ? (id, line) => say(`[node ${id}] ${line}`) : undefined,
  });
  const rows = cluster.rows();
  const view = await cluster.view();
  out.result({ nodes: rows, controller: view.controller, rootDir: cluster.rootDir }, () => {
    out.line(formatNodeTable(rows));
    out.line(`controller: node ${view.controller}; data in ${cluster.rootDir}${options.rootDir ? '' : ' (removed on exit; --data DIR keeps it)'}`);
    out.line(`try: runnel --url ${rows[0].clientUrl} topic create orders --partitions 3 --replication-factor ${Math.min(3, rows.length)}`);
    out.line('Ctrl-C stops everything.');
  });
  let stopping = false;
  await new Promise<void>((done) => {
    const stop = (signal: NodeJS.Signals): void => {
      if (stopping) {
        say(`runnel: second ${signal}: killing the brokers and etcd`);
        for (const b of cluster.brokers) void b.kill('SIGKILL');
        void cluster.etcd.kill('SIGKILL').finally(() => process.exit(1));
        return;
      }
      stopping = true;
      say(`runnel: ${signal}: stopping ${rows.length} brokers, then etcd`);
      cluster.stop().then(() => {
        say('runnel: cluster stopped');
        done();
      }, (error: unknown) => {
        say(`runnel: stopping the cluster failed: ${error instanceof Error ? error.message : String(error)}`);
        process.exitCode = 1;
        done();
      });
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
    // A broker that dies on its own is reported (with its last output); the others keep running.
    for (const broker of cluster.brokers) {
      void broker.exited.then(() => {
        if (!stopping) say(`runnel: node ${broker.id} exited unexpectedly\n${broker.log()}`);
      });
    }
  });
}
