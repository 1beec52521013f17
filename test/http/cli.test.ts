// The `runnel` CLI as a user runs it: a broker started by `runnel start` in a child process, commands against it.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { benchCommand, failureText, USAGE } from '../../server/src/cli.ts';
import { RunnelError } from '@runnel/client/codec';
import { CONFIG_FIELDS } from '../../server/src/config.ts';

const root = fileURLToPath(new URL('../..', import.meta.url));
const cli = join(root, 'server/src/cli.ts');
/** The `runnel` bin as `npm ci` links it at the root (`npx runnel ...`). */
const bin = join(root, 'node_modules/.bin/runnel');
let broker: ChildProcess | undefined;
let dataDir = '';
let url = '';

function runnel(args: string[], stdin = '', env: NodeJS.ProcessEnv = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(bin, args, { cwd: root, env: { ...process.env, RUNNEL_URL: url, ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`runnel ${args.join(' ')} timed out; stderr: ${stderr}`));
    }, 30_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    child.stdin.end(stdin);
  });
}

before(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'runnel-cli-test-'));
  const child = spawn(process.execPath, ['--import', 'tsx', cli, 'start', '--port', '0', '--host', '127.0.0.1', '--data', dataDir, '--static-dir', ''], { cwd: root, env: { ...process.env, RUNNEL_REQUIRE_NATIVE_UWS: '1' } });
  broker = child;
  url = await new Promise<string>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`broker did not start: ${out}`)), 30_000);
    const onData = (d: Buffer) => {
      out += d;
      const m = /ready at (http:\/\/\S+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.on('exit', (code) => reject(new Error(`broker exited with ${code}: ${out}`)));
  });
});

after(async () => {
  if (broker && broker.exitCode === null) {
    const exited = new Promise((r) => broker!.once('exit', r));
    broker.kill('SIGTERM');
    await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
    if (broker.exitCode === null) broker.kill('SIGKILL');
  }
  await rm(dataDir, { recursive: true, force: true });
});

test('topic create / list / describe / delete, human and --json', async () => {
  const created = await runnel(['topic', 'create', 'cli-t', '--partitions', '2', '--replication-factor', '1', '--retention-ms', '60000']);
  assert.equal(created.code, 0, created.stderr);
  assert.match(created.stdout, /created topic cli-t \(2 partitions/);
  const list = await runnel(['topic', 'list']);
  assert.match(list.stdout, /^TOPIC\s+PARTITIONS\s+RF\s+RETENTION/m);
  assert.match(list.stdout, /^cli-t\s+2\s+1\s+1m\s/m);
  const listJson = JSON.parse((await runnel(['topic', 'list', '--json'])).stdout);
  assert.deepEqual(listJson.topics.map((t: { name: string }) => t.name), ['cli-t']);
  const described = JSON.parse((await runnel(['--json', 'topic', 'describe', 'cli-t'])).stdout);
  assert.equal(described.partitions.length, 2);
  assert.match((await runnel(['topic', 'describe', 'cli-t'])).stdout, /^PARTITION\s+LEADER\s+REPLICAS\s+ISR\s+LOG-START\s+HIGH-WATERMARK/m);
  const dup = await runnel(['topic', 'create', 'cli-t']);
  assert.equal(dup.code, 1);
  assert.match(dup.stderr, /^error: TOPIC_ALREADY_EXISTS: /);
  assert.equal((await runnel(['topic', 'delete', 'cli-t'])).code, 0);
  const gone = await runnel(['topic', 'describe', 'cli-t', '--json']);
  assert.equal(gone.code, 1);
  assert.equal(JSON.parse(gone.stderr).error.code, 'UNKNOWN_TOPIC_OR_PARTITION');
});

test('produce from stdin, consume --from earliest, consume with a group resumes', async () => {
  await runnel(['topic', 'create', 'cli-p', '--partitions', '1']);
  const lines = ['plain text', '{"user":"u1","n":1}', '', '7', '{"user":"u2","n":2}'];
  const produced = await runnel(['produce', 'cli-p', '--key-field', 'user'], `${lines.join('\n')}\n`);
  assert.equal(produced.code, 0, produced.stderr);
  assert.match(produced.stdout, /produced 4 records to cli-p \(offsets p0: 0-3\)/);

  const consumed = await runnel(['consume', 'cli-p', '--from', 'earliest', '--json', '--max', '4']);
  assert.equal(consumed.code, 0, consumed.stderr);
  const records = consumed.stdout.trim().split('\n').map((l) => JSON.parse(l));
  assert.deepEqual(records.map((r) => [r.offset, r.key, r.value]), [[0, null, 'plain text'], [1, 'u1', { user: 'u1', n: 1 }], [2, null, 7], [3, 'u2', { user: 'u2', n: 2 }]]);
  const human = await runnel(['consume', 'cli-p', '--from', '2', '--timeout-ms', '800']);
  assert.equal(human.stdout, '7\nu2\t{"user":"u2","n":2}\n');

  const g1 = await runnel(['consume', 'cli-p', '--group', 'cli-g', '--from', 'earliest', '--max', '3', '--json']);
  assert.equal(g1.stdout.trim().split('\n').length, 3);
  const g2 = await runnel(['consume', 'cli-p', '--group', 'cli-g', '--from', 'earliest', '--timeout-ms', '800', '--json']);
  assert.deepEqual(g2.stdout.trim().split('\n').map((l) => JSON.parse(l).offset), [3], 'the group resumes after its committed offset');

  const producedJson = JSON.parse((await runnel(['produce', 'cli-p', '--json'], 'a\nb\n')).stdout);
  assert.deepEqual(producedJson, { topic: 'cli-p', records: 2, partitions: [{ partition: 0, firstOffset: 4, lastOffset: 5 }] });
});

test('usage errors and an unreachable broker exit 1 with a message', async () => {
  const bad = await runnel(['consume', 'cli-p', '--from', 'yesterday']);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /--from must be earliest, latest or an offset/);
  const unknown = await runnel(['frobnicate']);
  assert.equal(unknown.code, 1);
  const down = await runnel(['topic', 'list'], '', { RUNNEL_URL: 'http://127.0.0.1:1' });
  assert.equal(down.code, 1);
  assert.match(down.stderr, /NOT_CONNECTED: cannot reach/);
  const cfg = await runnel(['start', '--port', 'abc']);
  assert.equal(cfg.code, 1);
  assert.match(cfg.stderr, /--port must be an integer 0-65535, got 'abc'/);
});

test('--help and start --help list token create and the security flags of start', async () => {
  for (const args of [['--help'], ['start', '--help']]) {
    const help = await runnel(args);
    assert.equal(help.code, 0, help.stderr);
    assert.equal(help.stdout.trim(), USAGE);
  }
  for (const flag of ['token create', '--sub', '--ttl', ...CONFIG_FIELDS.filter((f) => ['host', 'corsOrigins', 'insecure', 'tlsCertFile', 'tlsKeyFile'].includes(f.key) || f.key.startsWith('auth')).map((f) => f.flag)]) {
    assert.ok(USAGE.includes(flag), `usage lacks ${flag}`);
  }
});

test('runnel bench runs the benchmarks on the sources: the runnel-source condition in its arguments and in NODE_OPTIONS for the processes they spawn', () => {
  const plain = benchCommand(['log'], { NODE_OPTIONS: '--max-old-space-size=4096' });
  assert.deepEqual(plain.args.slice(0, 3), ['--conditions=runnel-source', '--import', 'tsx']);
  assert.equal(plain.args[3], join(root, 'test/bench/run.ts'));
  assert.deepEqual(plain.args.slice(4), ['log']);
  assert.equal(plain.cwd.replace(/\/$/, ''), root.replace(/\/$/, ''));
  assert.equal(plain.env.NODE_OPTIONS, '--conditions=runnel-source --max-old-space-size=4096');
  assert.equal(benchCommand([], { NODE_OPTIONS: '--conditions=runnel-source' }).env.NODE_OPTIONS, '--conditions=runnel-source');
  assert.equal(benchCommand([], {}).env.NODE_OPTIONS, '--conditions=runnel-source');
});

/** `runnel start` with extra flags, as a user runs it; resolves once it is ready, with its start-up output. */
async function startRunnel(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ child: ChildProcess; url: string; out: string; stop(): Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'runnel-cli-auth-'));
  const child = spawn(bin, ['start', '--port', '0', '--data', dir, '--static-dir', '', ...args], { cwd: root, env: { ...process.env, ...env } });
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
      if (child.exitCode === null) child.kill('SIGKILL');
    }
    await rm(dir, { recursive: true, force: true });
  };
  let out = '';
  try {
    const url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`broker did not start: ${out}`)), 30_000);
      const onData = (d: Buffer) => {
        out += d;
        const m = /ready at (https?:\/\/\S+)/.exec(out);
        if (m) {
          clearTimeout(timer);
          resolve(m[1]);
        }
      };
      child.stdout!.on('data', onData);
      child.stderr!.on('data', onData);
      child.on('exit', (code) => {
        clearTimeout(timer);
        reject(Object.assign(new Error(`broker exited with ${code}: ${out}`), { code, out }));
      });
    });
    return { child, url, out, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

test('secure defaults: another host needs auth; --auth-secret requires tokens that runnel token create mints; other origins may not write', async () => {
  const refused = await runnel(['start', '--port', '0', '--host', '0.0.0.0', '--data', join(dataDir, 'refused')]);
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, /configuration error: refusing to listen on 0\.0\.0\.0 without auth/);

  const secret = 'cli-test-secret-0123456789abcdef-0123456789abcdef';
  const broker = await startRunnel(['--host', '0.0.0.0'], { RUNNEL_AUTH_SECRET: secret });
  try {
    assert.match(broker.out, /runnel: SECURITY: tokens required \(1 HS256 secret\(s\)\)/);
    assert.match(broker.out, /listening on http:\/\/0\.0\.0\.0 \(all interfaces\):\d+/);
    const anonymous = await fetch(`${broker.url}/v1/topics`);
    assert.equal(anonymous.status, 401);
    assert.equal(((await anonymous.json()) as { error: { code: string } }).error.code, 'SASL_AUTHENTICATION_FAILED');

    const minted = await runnel(['token', 'create', '--sub', 'ops', '--admin', '--ttl', '5m', '--json'], '', { RUNNEL_AUTH_SECRET: secret });
    assert.equal(minted.code, 0, minted.stderr);
    const { token, sub, runnel: grants } = JSON.parse(minted.stdout) as { token: string; sub: string; runnel: { admin: boolean } };
    assert.equal(sub, 'ops');
    assert.equal(grants.admin, true);
    const auth = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
    const created = await fetch(`${broker.url}/v1/topics`, { method: 'POST', headers: auth, body: JSON.stringify({ name: 'cli-auth', partitions: 1 }) });
    assert.equal(created.status, 201, await created.clone().text());
    const listed = (await (await fetch(`${broker.url}/v1/topics`, { headers: auth })).json()) as { topics: { name: string }[] };
    assert.deepEqual(listed.topics.map((t) => t.name), ['cli-auth']);

    // The CLI's own commands carry the token (--token or RUNNEL_TOKEN); without one they are refused.
    const cliUrl = ['--url', broker.url];
    assert.equal((await runnel(['topic', 'list', ...cliUrl])).code, 1, 'no token: refused');
    const viaFlag = await runnel(['topic', 'list', ...cliUrl, '--token', token, '--json']);
    assert.equal(viaFlag.code, 0, viaFlag.stderr);
    assert.match(viaFlag.stdout, /cli-auth/);
    const produced = await runnel(['produce', 'cli-auth', ...cliUrl], '{"n":1}\n', { RUNNEL_TOKEN: token });
    assert.equal(produced.code, 0, produced.stderr);

    const foreign = await fetch(`${broker.url}/v1/topics/cli-auth/records`, { method: 'POST', headers: { ...auth, origin: 'https://evil.example', 'content-type': 'text/plain' }, body: '{"value":1}' });
    assert.equal(foreign.status, 403);
    assert.equal(((await foreign.json()) as { error: { code: string } }).error.code, 'ORIGIN_NOT_ALLOWED');

    const noSecret = await runnel(['token', 'create', '--sub', 'u1'], '', { RUNNEL_AUTH_SECRET: '' });
    assert.equal(noSecret.code, 1);
    assert.match(noSecret.stderr, /^error: INVALID_REQUEST: no signing secret/);
  } finally {
    await broker.stop();
  }
});

test('a coded error (numeric code) is reported by its name, not a crash of the reporter', () => {
  const error = new RunnelError('BROKER_ID_IN_USE', 'broker id 2 is registered by another process');
  assert.equal(failureText(error, false), 'error: BROKER_ID_IN_USE: broker id 2 is registered by another process\n');
  assert.deepEqual(JSON.parse(failureText(error, true)), { error: { code: 'BROKER_ID_IN_USE', message: 'broker id 2 is registered by another process' } });
  const parseArgs = Object.assign(new TypeError('Unknown option \'--nope\''), { code: 'ERR_PARSE_ARGS_UNKNOWN_OPTION' });
  assert.equal(failureText(parseArgs, false), "error: INVALID_REQUEST: Unknown option '--nope'\n");
  assert.match(failureText(new Error('boom'), false), /^runnel: Error: boom\n/);
});
