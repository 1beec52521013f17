/**
 * `runnel` command line: `start` runs a broker; `token create` mints a
 * token offline; the other commands are clients of a running broker's HTTP
 * API (`--url`, default RUNNEL_URL or http://localhost:8080). Human output
 * by default, `--json` for scripts.
 * Errors print `error: CODE: message` on stderr and exit 1. Reference: docs/cli.md.
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { RunnelError } from '@runnel/client/codec';
import { ConfigError } from './config.ts';
import { runConsumeCommand } from './cli/consume.ts';
import { CliError, RunnelHttpClient } from './cli/http-client.ts';
import { createOutput } from './cli/output.ts';
import { runProduceCommand } from './cli/produce.ts';
import { runStartCommand } from './cli/start.ts';
import { runTopicCommand } from './cli/topic.ts';

export const USAGE = `usage: runnel <command> [options]

  start [--port N] [--host H] [--data DIR] [--config FILE] [--limit name=value] ...   run a broker
        default: 127.0.0.1, anonymous clients (loopback only); another --host needs auth or --insecure
        auth:    [--auth-secret S,...] [--auth-public-key FILE,...] [--auth-jwks FILE] [--auth-issuer ISS] [--auth-audience AUD]
        origins: [--cors-origins ORIGIN,...|'*']   tls: [--tls-cert FILE --tls-key FILE]   [--insecure]
  topic create <name> [--partitions N] [--replication-factor R] [--retention-ms MS] [--retention-bytes B]
  topic list | topic describe <name> | topic delete <name>
  produce <topic> [--key-field F] [--partition P]       one record per stdin line
  consume <topic> [--from earliest|latest|<offset>] [--partition P] [--group G] [--max N] [--timeout-ms MS]
  token create --sub SUBJECT [--publish P]... [--subscribe P]... [--group P]... [--admin] [--ttl 1h]
        [--issuer ISS] [--audience AUD]                 mint an HS256 token (secret: $RUNNEL_AUTH_SECRET or --secret S)
  bench [names...]                                      run benchmarks (test/bench)
  cluster [--nodes 3] [--data DIR] [--port BASE]        etcd + N brokers on this machine (Ctrl-C stops them)

global: --url URL (default $RUNNEL_URL or http://localhost:8080), --token JWT (default $RUNNEL_TOKEN; brokers with auth), --json (machine output), --help
docs: docs/cli.md, docs/configuration.md, docs/security.md, docs/http.md`;

/** Pulls the global flags out of argv wherever they appear (never for `start`, whose flags are config). */
export function splitGlobalFlags(argv: string[], env: NodeJS.ProcessEnv): { url: string; token: string | undefined; json: boolean; help: boolean; rest: string[] } {
  let url = env.RUNNEL_URL || 'http://localhost:8080';
  let token: string | undefined = env.RUNNEL_TOKEN || undefined;
  let json = false;
  let help = false;
  const rest: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--json') json = true;
    else if (arg === '--help' || arg === '-h') help = true;
    else if (arg === '--url') {
      if (argv[i + 1] === undefined) throw new CliError('INVALID_REQUEST', '--url needs a value');
      url = argv[++i];
    } else if (arg.startsWith('--url=')) url = arg.slice(6);
    else if (arg === '--token') {
      if (argv[i + 1] === undefined) throw new CliError('INVALID_REQUEST', '--token needs a value');
      token = argv[++i];
    } else if (arg.startsWith('--token=')) token = arg.slice(8);
    else rest.push(arg);
  }
  try {
    new URL(url);
  } catch {
    throw new CliError('INVALID_REQUEST', `--url must be an http(s) URL, got '${url}'`);
  }
  return { url, token, json, help, rest };
}

/** The export condition that maps each @runnel package to its TypeScript sources (src/*.ts). */
const SOURCE_CONDITION = '--conditions=runnel-source';

/**
 * How `runnel bench` runs test/bench/run.ts: as `npm run bench` does, on the TypeScript sources
 * through tsx, from the repository root, with the runnel-source condition in NODE_OPTIONS too, so
 * the broker and client processes the benchmarks spawn resolve @runnel/* to src/ as well. Without
 * it, `@runnel/client/codec` resolved to dist/ while the benchmarks import server sources directly:
 * a mix of compiled and source modules, measuring stale code after an edit without a build.
 */
export function benchCommand(names: readonly string[], env: NodeJS.ProcessEnv): { args: string[]; cwd: string; env: NodeJS.ProcessEnv } {
  const cwd = fileURLToPath(new URL('../..', import.meta.url));
  const runner = fileURLToPath(new URL('../../test/bench/run.ts', import.meta.url));
  const nodeOptions = (env.NODE_OPTIONS ?? '').split(/\s+/).includes(SOURCE_CONDITION) ? env.NODE_OPTIONS! : [SOURCE_CONDITION, env.NODE_OPTIONS].filter(Boolean).join(' ');
  return { args: [SOURCE_CONDITION, '--import', 'tsx', runner, ...names], cwd, env: { ...env, NODE_OPTIONS: nodeOptions } };
}

function runBench(names: string[]): void {
  const { args, cwd, env } = benchCommand(names, process.env);
  const result = spawnSync(process.execPath, args, { stdio: 'inherit', cwd, env });
  process.exitCode = result.status ?? 1;
}

export async function main(argv: string[]): Promise<void> {
  if (argv[0] === 'start') {
    if (argv.includes('--help') || argv.includes('-h')) return void console.log(USAGE);
    return runStartCommand(argv.slice(1));
  }
  const { url, token, json, help, rest: [command, ...rest] } = splitGlobalFlags(argv, process.env);
  if (command === undefined || help || command === 'help') {
    console.log(USAGE);
    return;
  }
  const client = new RunnelHttpClient(url, token);
  const out = createOutput(json);
  switch (command) {
    case 'topic': return runTopicCommand(rest, client, out);
    case 'produce': return runProduceCommand(rest, client, out);
    case 'consume': return runConsumeCommand(rest, client, out);
    case 'bench': return runBench(rest);
    case 'cluster': return (await import('./cli/cluster.ts')).runClusterCommand(rest, out);
    case 'token': return (await import('./cli/token.ts')).runTokenCommand(rest, out);
    default: throw new CliError('INVALID_REQUEST', `unknown command '${command}'\n${USAGE}`);
  }
}

/** One coded failure, as `error: CODE: message` or, with --json, `{ "error": { code, message } }`. */
function codedLine(code: string, message: string, json: boolean): string {
  return json ? `${JSON.stringify({ error: { code, message } })}\n` : `error: ${code}: ${message}\n`;
}

/** What a failed command prints on stderr (one line, or a stack for what no one expected). */
export function failureText(error: unknown, json: boolean): string {
  if (error instanceof CliError) return codedLine(error.code, error.message, json);
  if (error instanceof ConfigError) return `runnel: configuration error: ${error.message}\n`;
  // NB: `code` is not always a string: a RunnelError's is its number (errorName is the string).
  const code = error instanceof Error && 'code' in error ? (error as { code: unknown }).code : undefined;
  if (typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS')) return `error: INVALID_REQUEST: ${(error as Error).message}\n`;
  if (error instanceof RunnelError) return codedLine(error.errorName, error.message, json);
  return `runnel: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`;
}

/** Runs one command; reports failures on stderr and sets exit status 1 instead of throwing. */
export async function runCli(argv: string[]): Promise<void> {
  try {
    await main(argv);
  } catch (error) {
    process.stderr.write(failureText(error, argv.includes('--json')));
    process.exitCode = 1;
  }
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) await runCli(process.argv.slice(2));
