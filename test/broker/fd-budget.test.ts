/**
 * Issue 11, finding 3: a real broker process under a low open-file limit
 * (`prlimit --nofile=256:256`, else `ulimit -n 256` in bash). More partitions
 * than descriptors are created and produced to, twice (segment handles are
 * closed while idle and reopened on demand), `/healthz` keeps answering, the
 * derived `maxConnections` (printed at start-up) are all accepted and the
 * connections beyond it are answered (closed 4901 LIMIT_EXCEEDED) instead of
 * timing out, and the broker still produces to every partition while holding
 * them. Before the fix every partition pinned its active segment's fd and
 * `maxConnections` stayed 100,000: topic creation failed with EMFILE
 * (KAFKA_STORAGE_ERROR) once the partitions reached the limit.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';

const FD_LIMIT = 256;
const TOPICS = 6;
const PARTITIONS = 50; // 300 partitions > 256 descriptors
const childScript = fileURLToPath(new URL('./broker-child.ts', import.meta.url));

/** `prlimit` (util-linux) when present, else bash's ulimit; both set the soft and the hard limit. */
function limitedCommand(args: string[]): { command: string; args: string[] } {
  if (spawnSync('prlimit', ['--version']).status === 0) return { command: 'prlimit', args: [`--nofile=${FD_LIMIT}:${FD_LIMIT}`, ...args] };
  const quoted = args.map((a) => `'${a.replaceAll("'", "'\\''")}'`).join(' ');
  return { command: 'bash', args: ['-c', `ulimit -n ${FD_LIMIT} && exec ${quoted}`] };
}

async function withTimeout<T>(what: string, ms: number, p: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`${what} did not answer within ${ms} ms`)), ms); })]);
  } finally {
    clearTimeout(timer);
  }
}

test(`a broker under ulimit -n ${FD_LIMIT} serves ${TOPICS * PARTITIONS} partitions and refuses connections past its derived maxConnections`, { timeout: 60_000 }, async () => {
  const dataDir = await mkdtemp(join(tmpdir(), 'runnel-fd-budget-'));
  const { command, args } = limitedCommand([process.execPath, '--import', 'tsx', childScript, dataDir]);
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, RUNNEL_REQUIRE_NATIVE_UWS: '1' } });
  const stderr: string[] = [];
  createInterface({ input: child.stderr! }).on('line', (line) => stderr.push(line));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const sockets: WebSocket[] = [];
  try {
    const port = await withTimeout('broker start', 20_000, new Promise<number>((resolve, reject) => {
      createInterface({ input: child.stdout! }).once('line', (line) => resolve((JSON.parse(line) as { port: number }).port));
      void exited.then((code) => reject(new Error(`broker exited with ${code} before listening:\n${stderr.join('\n')}`)));
    }));
    const base = `http://127.0.0.1:${port}`;
    const healthy = async () => assert.equal((await withTimeout('/healthz', 2000, fetch(`${base}/healthz`))).status, 200);

    for (let t = 0; t < TOPICS; t++) {
      const res = await fetch(`${base}/v1/topics`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: `fd-${t}`, partitions: PARTITIONS }) });
      assert.equal(res.status, 201, `topic fd-${t} (${(t + 1) * PARTITIONS} partitions): ${await res.text()}`);
    }
    await healthy();

    /** One record to every partition of every topic (each request appends its topic's partitions in parallel). */
    const produceAll = async (round: number) => {
      for (let t = 0; t < TOPICS; t++) {
        const records = Array.from({ length: PARTITIONS }, (_, p) => ({ value: { round, p }, partition: p }));
        const res = await withTimeout(`produce to fd-${t}`, 10_000, fetch(`${base}/v1/topics/fd-${t}/records`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ records }) }));
        const body = await res.text();
        assert.equal(res.status, 200, `round ${round}, topic fd-${t}: ${body}`);
        assert.deepEqual((JSON.parse(body) as { offsets: { partition: number; offset: number }[] }).offsets.map((o) => o.offset), records.map(() => round));
      }
    };
    await produceAll(0);
    await produceAll(1);
    for (let t = 0; t < TOPICS; t++) {
      for (const p of [0, PARTITIONS - 1]) {
        const res = await fetch(`${base}/v1/topics/fd-${t}/partitions/${p}/records?offset=0`);
        const body = (await res.json()) as { records: { offset: number; value: unknown }[] };
        assert.deepEqual(body.records.map((r) => r.value), [{ round: 0, p }, { round: 1, p }], `fd-${t}/${p} read back`);
      }
    }
    await healthy();

    const line = stderr.find((l) => l.includes('file descriptors'));
    const derived = /maxConnections (\d+), maxOpenFiles (\d+)/.exec(line ?? '');
    assert.ok(derived, `start-up line with the fd budget, got:\n${stderr.join('\n')}`);
    const [maxConnections, maxOpenFiles] = [Number(derived[1]), Number(derived[2])];
    assert.ok(maxConnections + maxOpenFiles < FD_LIMIT, line);

    const connect = () => {
      const ws = new WebSocket(`ws://127.0.0.1:${port}/v1/ws`);
      sockets.push(ws);
      return new Promise<{ opened: boolean; closeCode: number | null }>((resolve) => {
        let opened = false;
        ws.on('open', () => { opened = true; });
        ws.on('close', (code) => resolve({ opened, closeCode: code }));
        ws.on('error', () => {});
        setTimeout(() => resolve({ opened, closeCode: null }), 5000).unref();
      });
    };
    const held = Array.from({ length: maxConnections }, () => connect());
    await withTimeout(`${maxConnections} connections`, 10_000, Promise.all(sockets.map((ws) => new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('close', (code) => reject(new Error(`connection within maxConnections closed with ${code}`)));
    }))));
    const beyond = await Promise.all(Array.from({ length: 5 }, () => connect()));
    assert.deepEqual(beyond.map((b) => b.closeCode), [4901, 4901, 4901, 4901, 4901], 'beyond maxConnections: answered and closed LIMIT_EXCEEDED, not timed out');
    await healthy();
    await produceAll(2);

    const metrics = await (await fetch(`${base}/metrics`)).text();
    const gauge = (name: string) => Number(new RegExp(`^${name} (\\d+)`, 'm').exec(metrics)?.[1] ?? NaN);
    assert.ok(gauge('runnel_open_segment_files') <= maxOpenFiles, `runnel_open_segment_files ${gauge('runnel_open_segment_files')} <= ${maxOpenFiles}`);
    assert.ok(gauge('process_open_fds') < FD_LIMIT, `process_open_fds ${gauge('process_open_fds')}`);
    for (const ws of sockets) ws.terminate();
    await Promise.all(held);
  } finally {
    for (const ws of sockets) ws.terminate();
    child.kill('SIGTERM');
    await withTimeout('broker exit', 10_000, exited).catch(() => child.kill('SIGKILL'));
    await rm(dataDir, { recursive: true, force: true });
  }
});
