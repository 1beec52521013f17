/**
 * A port is one broker's alone: a broker started on a port another broker holds fails to start. uWS's
 * default listen sets SO_REUSEPORT, and with it the second broker process started "fine": the kernel spread
 * new connections over two brokers with two logs, so a client reconnecting through the same URL could land
 * on the one that never issued its producer id (test/sdk/failover "URL rotation" failed so in CI, outcome
 * unknown: another test's broker had been given the same free port).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../e2e/harness/broker-process.ts';
import { startTestServer, type TestServer } from './harness.ts';

const root = new URL('../..', import.meta.url).pathname;

/** A broker on an explicit port, as the CLI and the harnesses bind one (NB: one on port 0 did not share its port with the child here). */
async function startOnFreePort(): Promise<TestServer> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startTestServer({ port: await freePort() });
    } catch (error) {
      if (attempt === 3) throw error; // taken between freePort and the listen: another one
    }
  }
}

test('a broker process on a port another broker holds exits instead of sharing it', { timeout: 90_000 }, async () => {
  const first = await startOnFreePort();
  const dataDir = await mkdtemp(join(tmpdir(), 'runnel-broker-test-'));
  try {
    const child = spawn(process.execPath, ['--import', 'tsx', 'server/src/cli.ts', 'start', '--port', String(first.port), '--data', dataDir], {
      cwd: root, env: { ...process.env, RUNNEL_REQUIRE_NATIVE_UWS: '1' }, stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    // Either it exits, or it says it is ready (it shares the port): then it is killed and the test fails.
    const outcome = await new Promise<string>((resolve) => {
      const read = (chunk: Buffer): void => {
        output += chunk.toString();
        if (output.includes('runnel: ready at')) resolve('ready');
      };
      child.stdout.on('data', read);
      child.stderr.on('data', read);
      child.once('exit', (code) => resolve(`exit ${code}`));
    });
    child.kill('SIGKILL');
    assert.notEqual(outcome, 'ready', `the second broker listens on port ${first.port} too:\n${output}`);
    assert.notEqual(outcome, 'exit 0');
    assert.match(output, /could not listen on 127\.0\.0\.1:\d+ \(in use by another process\?\)/);
  } finally {
    await first.stop();
    await rm(dataDir, { recursive: true, force: true });
  }
});
