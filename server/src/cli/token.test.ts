import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { hs256Key } from '../auth/keys.ts';
import { createTokenVerifier } from '../auth/verifier.ts';
import { authorize } from '../auth/authorize.ts';
import { CliError } from './http-client.ts';
import type { Output } from './output.ts';
import { parseDurationMs, runTokenCommand } from './token.ts';

const SECRET = 'a-shared-secret-of-at-least-32-bytes!!';
const NOW_MS = 1_700_000_000_000;

function captureOutput(json = false): Output & { lines: string[]; results: unknown[] } {
  const lines: string[] = [];
  const results: unknown[] = [];
  return {
    json, lines, results,
    result(data, human) {
      if (json) results.push(data);
      else human();
    },
    line(text) { lines.push(text); },
    table() { throw new Error('no tables here'); },
    progress() {},
    endProgress() {},
  };
}

const verifier = createTokenVerifier({ keys: [hs256Key(SECRET, 'test')] });

test('token create mints a token the verifier accepts with the right grants', async () => {
  const out = captureOutput();
  await runTokenCommand(['create', '--sub', 'u1', '--publish', 'activity.*', '--subscribe', 'dash.*', '--subscribe', 'alerts', '--group', 'g*', '--ttl', '1h'], out, { RUNNEL_AUTH_SECRET: SECRET }, NOW_MS);
  assert.equal(out.lines.length, 1, 'only the token on stdout');
  const result = await verifier.verify(out.lines[0], NOW_MS);
  assert.ok(result.ok, !result.ok ? result.reason : '');
  const p = result.principal;
  assert.equal(p.subject, 'u1');
  assert.equal(p.expiresAtMs, NOW_MS + 3_600_000);
  assert.ok(authorize(p, 'produce', { topic: 'activity.clicks' }).ok);
  assert.ok(!authorize(p, 'produce', { topic: 'dash.x' }).ok);
  assert.ok(authorize(p, 'subscribe', { topic: 'dash.x' }).ok);
  assert.ok(authorize(p, 'fetch', { topic: 'alerts' }).ok);
  assert.ok(authorize(p, 'groupJoin', { group: 'g-reports' }).ok);
  assert.ok(!authorize(p, 'admin', { cluster: true }).ok);
  assert.ok(!(await verifier.verify(out.lines[0], NOW_MS + 3_600_000 + 31_000)).ok, 'expires after the ttl (+ tolerance)');
});

test('--admin, --secret, --issuer/--audience and --json', async () => {
  const out = captureOutput(true);
  await runTokenCommand(['create', '--sub', 'ops', '--admin', '--ttl', '15m', '--secret', SECRET, '--issuer', 'runnel-cli', '--audience', 'runnel'], out, {}, NOW_MS);
  const [answer] = out.results as { token: string; sub: string; expiresAt: string; runnel: unknown }[];
  assert.equal(answer.sub, 'ops');
  assert.equal(answer.expiresAt, new Date(NOW_MS + 900_000).toISOString());
  assert.deepEqual(answer.runnel, { publish: [], subscribe: [], group: [], admin: true });
  const strict = createTokenVerifier({ keys: [hs256Key(SECRET, 'test')], issuer: 'runnel-cli', audience: 'runnel' });
  const result = await strict.verify(answer.token, NOW_MS);
  assert.ok(result.ok && result.principal.grants.admin);
  assert.ok(authorize(result.principal, 'deleteTopic', { topic: 'x' }).ok);
});

async function assertCliError(args: string[], env: NodeJS.ProcessEnv, pattern: RegExp): Promise<void> {
  await assert.rejects(runTokenCommand(args, captureOutput(), env, NOW_MS), (error: Error) => {
    assert.ok(error instanceof CliError, `${error.name}: ${error.message}`);
    assert.equal(error.code, 'INVALID_REQUEST');
    assert.match(error.message, pattern);
    return true;
  });
}

test('clear errors: missing secret, short secret, bad ttl, missing sub, bad pattern, unknown subcommand', async () => {
  const env = { RUNNEL_AUTH_SECRET: SECRET };
  await assertCliError(['create', '--sub', 'u1'], {}, /no signing secret: set RUNNEL_AUTH_SECRET \(preferred\) or pass --secret/);
  await assertCliError(['create', '--sub', 'u1', '--secret', 'short'], {}, /at least 32 bytes/);
  for (const ttl of ['1 hour', '0s', '10', '-1h', '400d', 'h']) {
    await assertCliError(['create', '--sub', 'u1', `--ttl=${ttl}`], env, /--ttl must be a duration from 1s to 366d such as 30s, 15m, 1h or 7d/);
  }
  await assertCliError(['create'], env, /--sub is required/);
  await assertCliError(['create', '--sub', 'u1', '--publish', 'bad topic!'], env, /runnel\.publish\.0: topic patterns use/);
  await assertCliError(['create', '--sub', 'u1', 'extra'], env, /unexpected argument 'extra'/);
  await assertCliError(['mint'], env, /unknown token command 'mint'/);
});

test('the secret never appears in output or errors', async () => {
  const out = captureOutput(true);
  await runTokenCommand(['create', '--sub', 'u1'], out, { RUNNEL_AUTH_SECRET: SECRET }, NOW_MS);
  assert.ok(!JSON.stringify(out.results).includes(SECRET));
  await assert.rejects(runTokenCommand(['create', '--sub', 'u1', '--secret', 'short-secret-x'], captureOutput(), {}, NOW_MS), (e: Error) => !e.message.includes('short-secret-x'));
});

test('durations', () => {
  assert.equal(parseDurationMs('500ms'), 500);
  assert.equal(parseDurationMs('90s'), 90_000);
  assert.equal(parseDurationMs('15m'), 900_000);
  assert.equal(parseDurationMs('1h'), 3_600_000);
  assert.equal(parseDurationMs('7d'), 604_800_000);
  assert.equal(parseDurationMs('1.5h'), undefined);
  assert.equal(parseDurationMs(''), undefined);
});

test('`runnel token create` dispatches from the CLI and prints only the token', async () => {
  const bin = fileURLToPath(new URL('../../bin/runnel.mjs', import.meta.url));
  const run = spawnSync(process.execPath, ['--conditions=runnel-source', bin, 'token', 'create', '--sub', 'u2', '--subscribe', '*', '--ttl', '5m'], {
    env: { ...process.env, RUNNEL_AUTH_SECRET: SECRET }, encoding: 'utf8', timeout: 60_000,
  });
  assert.equal(run.status, 0, run.stderr);
  const token = run.stdout.trim();
  assert.match(token, /^[\w-]+\.[\w-]+\.[\w-]+$/);
  const result = await verifier.verify(token, Date.now());
  assert.ok(result.ok && result.principal.subject === 'u2' && result.principal.grants.subscribe.matchesAll);
  const failed = spawnSync(process.execPath, ['--conditions=runnel-source', bin, 'token', 'create', '--sub', 'u2'], {
    env: { ...process.env, RUNNEL_AUTH_SECRET: '' }, encoding: 'utf8', timeout: 60_000,
  });
  assert.equal(failed.status, 1);
  assert.match(failed.stderr, /^error: INVALID_REQUEST: no signing secret/);
});
