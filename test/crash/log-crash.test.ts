/**
 * Crash test of the durable partition log with real processes and SIGKILL.
 *
 * Each cycle starts log-crash-child.ts on the same directory, lets it append
 * durable batches (and idempotent retries) for a random time, kills it with
 * SIGKILL, sometimes tears the tail of the active segment (cuts unacknowledged
 * bytes, or appends garbage), then reopens the log and proves:
 * - every append that had resolved is present with identical bytes and offsets;
 * - offsets are contiguous from logStartOffset, every served batch passes its CRC;
 * - nothing after a torn tail is served (the log ends at the last valid batch);
 * - every retry answered "duplicate" pointed at the original batch.
 * Odd cycles verify a copy so the child itself recovers the crashed directory.
 * The seed is printed; RUNNEL_CRASH_SEED reproduces a run.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { appendFile, cp, mkdtemp, readdir, readFile, rm, truncate } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { iterateBatches } from '@runnel/client/codec';
import { PartitionLog } from '../../server/src/log/partition-log.ts';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..');
const CYCLES = 24;
const seed = Number(process.env.RUNNEL_CRASH_SEED ?? Math.floor(Math.random() * 2 ** 31));

let state = seed >>> 0 || 1;
function random(): number {
  state ^= state << 13;
  state ^= state >>> 17;
  state ^= state << 5;
  return (state >>> 0) / 0x1_0000_0000;
}

interface Ack { lastOffset: number; hash: string }

/** Runs the child until `killAfterMs` past its "ready" line, SIGKILLs it, returns its lines. */
function runChild(dir: string, childSeed: number, killAfterMs: number): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', join(here, 'log-crash-child.ts'), dir, String(childSeed)], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    let timer: NodeJS.Timeout | undefined;
    const guard = setTimeout(() => child.kill('SIGKILL'), 20_000);
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (!timer && out.includes('ready')) timer = setTimeout(() => child.kill('SIGKILL'), killAfterMs);
    });
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      clearTimeout(guard);
      clearTimeout(timer);
      if (signal !== 'SIGKILL') return reject(new Error(`child exited with ${code}/${signal} before the kill: ${out.slice(-500)} ${err.slice(-2000)}`));
      // A line cut by the kill has no newline: it was not fully reported, ignore it.
      resolve(out.split('\n').slice(0, -1));
    });
  });
}

/**
 * File position just after the last acknowledged batch in the last segment (0 if none). A duplicate
 * answer acknowledges its original too (it resolves only once the original is durable), and the
 * child may report it before the original's own ack line when the kill falls between the two.
 */
async function ackedEndPosition(dir: string, acks: Map<number, Ack>, dupBases: ReadonlySet<number>): Promise<{ file: string; position: number; size: number }> {
  const logs = (await readdir(dir)).filter((n) => n.endsWith('.log')).sort();
  const file = join(dir, logs[logs.length - 1]);
  const bytes = await readFile(file);
  let position = 0;
  for (const b of iterateBatches(bytes, { verifyCrc: false })) {
    if (!b.ok) break;
    if (acks.has(b.value.header.baseOffset) || dupBases.has(b.value.header.baseOffset)) position = b.value.at + b.value.header.totalBytes;
  }
  return { file, position, size: bytes.length };
}

/** Tears the unacknowledged tail: cut inside it, or append garbage. Never touches acknowledged bytes. */
async function injectTornTail(dir: string, acks: Map<number, Ack>, dups: readonly [number, number][]): Promise<string> {
  const { file, position, size } = await ackedEndPosition(dir, acks, new Set(dups.map(([base]) => base)));
  if (random() < 0.5 && size > position) {
    const cut = position + Math.floor(random() * (size - position));
    await truncate(file, cut);
    return `cut ${size - cut} bytes`;
  }
  const garbage = Buffer.alloc(1 + Math.floor(random() * 200));
  for (let i = 0; i < garbage.length; i++) garbage[i] = Math.floor(random() * 256);
  if (random() < 0.3) garbage.fill(0);
  await appendFile(file, garbage);
  return `garbage ${garbage.length} bytes`;
}

async function verify(dir: string, acks: Map<number, Ack>, dups: [number, number][]): Promise<number> {
  const log = await PartitionLog.open(dir);
  try {
    const stored = new Map<number, Ack>();
    let offset = log.logStartOffset;
    while (offset < log.highWatermark) {
      const r = await log.read(offset, 1 << 20);
      assert.equal(r.firstOffset, offset, 'offsets contiguous');
      for (const b of iterateBatches(r.batches)) {
        assert.ok(b.ok, `served batch fails its CRC: ${!b.ok && b.message}`);
        const h = b.value.header;
        stored.set(h.baseOffset, { lastOffset: h.baseOffset + h.lastOffsetDelta, hash: createHash('sha1').update(r.batches.subarray(b.value.at, b.value.at + h.totalBytes)).digest('hex') });
      }
      assert.ok(r.nextOffset > offset);
      offset = r.nextOffset;
    }
    assert.equal(offset, log.logEndOffset, 'the visible log ends at the recovered log end');
    for (const [base, ack] of acks) assert.deepEqual(stored.get(base), ack, `acknowledged batch at ${base} present with identical bytes`);
    for (const [base, last] of dups) assert.equal(stored.get(base)?.lastOffset, last, `duplicate answer ${base}..${last} names a stored batch`);
    return log.logEndOffset;
  } finally {
    await log.close();
  }
}

test(`log survives ${CYCLES} SIGKILLs with torn tails (seed ${seed})`, { timeout: 120_000 }, async () => {
  const base = await mkdtemp(join(tmpdir(), 'runnel-crash-'));
  const dir = join(base, 'p0');
  const acks = new Map<number, Ack>();
  const dups: [number, number][] = [];
  try {
    for (let cycle = 0; cycle < CYCLES; cycle++) {
      const lines = await runChild(dir, Math.floor(random() * 2 ** 31), 100 + Math.floor(random() * 600));
      for (const line of lines) {
        const [kind, a, b, hash] = line.split(' ');
        assert.notEqual(kind, 'error', line);
        if (kind === 'ack') acks.set(Number(a), { lastOffset: Number(b), hash });
        if (kind === 'dup') dups.push([Number(a), Number(b)]);
      }
      const injected = random() < 0.5 ? await injectTornTail(dir, acks, dups) : 'none';
      const target = cycle % 2 === 1 ? join(base, `copy-${cycle}`) : dir;
      if (target !== dir) await cp(dir, target, { recursive: true });
      const end = await verify(target, acks, dups);
      if (target !== dir) await rm(target, { recursive: true, force: true });
      console.log(`cycle ${cycle}: ${lines.length} lines, ${acks.size} acks total, ${dups.length} duplicates, log end ${end}, torn tail: ${injected}`);
    }
    assert.ok(acks.size > CYCLES * 5, 'the child made progress');
    assert.ok(dups.length > 0, 'retries were exercised');
  } finally {
    await rm(base, { recursive: true, force: true });
  }
});
