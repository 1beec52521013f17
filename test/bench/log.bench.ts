/**
 * `npm run bench -- log`: the partition log engine on the real disk.
 * - durable append throughput, 100-byte records in batches of 1,000, on one
 *   partition and on 8 (many appends in flight so group commit works);
 * - sequential read throughput (read() from offset 0 to the high watermark);
 * - recovery time: open after a clean shutdown, after a crash (active
 *   segment validated) and with no checkpoint (every segment CRC-validated).
 * Flags: --seconds N (per append run, default 5), --inflight N (default 64).
 * Last line: {"bench":"log",...}. Benchmarks print figures; they assert nothing.
 */
import { mkdtemp, rm, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeRecordBatch } from '@runnel/client/codec';
import { assertNativeUws } from '../../server/src/broker/uws.ts';
import { CHECKPOINT_FILE } from '../../server/src/log/checkpoint.ts';
import { PartitionLog } from '../../server/src/log/partition-log.ts';

assertNativeUws();

const arg = (name: string, fallback: number): number => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
};
const SECONDS = arg('seconds', 5);
const INFLIGHT = arg('inflight', 64);
const RECORDS_PER_BATCH = 1000;
const RECORD_BYTES = 100;
const GiB = 1024 ** 3;

const template = encodeRecordBatch({
  records: Array.from({ length: RECORDS_PER_BATCH }, (_, i) => ({ value: new Uint8Array(RECORD_BYTES).fill(i & 0xff), timestampMs: Date.now() })),
});

/** Appends fresh copies of the template (as the broker gets fresh buffers off the wire) for `seconds`, `inflight` at a time. */
async function appendFor(log: PartitionLog, seconds: number, inflight: number): Promise<number> {
  const deadline = performance.now() + seconds * 1000;
  let batches = 0;
  async function lane(): Promise<void> {
    while (performance.now() < deadline) {
      await log.append(template.slice());
      batches++;
    }
  }
  await Promise.all(Array.from({ length: inflight }, lane));
  return batches * RECORDS_PER_BATCH;
}

async function benchAppend(base: string, partitions: number): Promise<{ recordsPerSec: number; logs: string[] }> {
  const dirs = Array.from({ length: partitions }, (_, p) => join(base, `append${partitions}-${p}`));
  const logs = await Promise.all(dirs.map((d) => PartitionLog.open(d)));
  await Promise.all(logs.map((l) => appendFor(l, 0.5, Math.ceil(INFLIGHT / partitions)))); // warm-up
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  const counts = await Promise.all(logs.map((l) => appendFor(l, SECONDS, Math.ceil(INFLIGHT / partitions))));
  const seconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  await Promise.all(logs.map((l) => l.close()));
  const records = counts.reduce((a, b) => a + b, 0);
  const recordsPerSec = records / seconds;
  console.log(`durable append, ${partitions} partition(s): ${fmt(recordsPerSec)} records/s, ${fmt(recordsPerSec * template.length / RECORDS_PER_BATCH / 2 ** 20)} MiB/s (${records} records in ${seconds.toFixed(2)} s, ${INFLIGHT} appends in flight, process CPU ${((cpu.user + cpu.system) / 1e4 / seconds).toFixed(0)}% of one core)`);
  return { recordsPerSec, logs: dirs };
}

async function benchRead(dir: string): Promise<{ recordsPerSec: number; bytes: number }> {
  const log = await PartitionLog.open(dir);
  const t0 = performance.now();
  let offset = log.logStartOffset;
  let bytes = 0;
  while (offset < log.highWatermark) {
    const r = await log.read(offset, 1 << 20);
    bytes += r.batches.length;
    offset = r.nextOffset;
  }
  const seconds = (performance.now() - t0) / 1000;
  const records = offset - log.logStartOffset;
  await log.close();
  console.log(`sequential read: ${fmt(records / seconds)} records/s, ${fmt(bytes / seconds / 2 ** 20)} MiB/s (${fmt(bytes / 2 ** 20)} MiB, page cache warm)`);
  return { recordsPerSec: records / seconds, bytes };
}

async function timeOpen(dir: string, label: string): Promise<number> {
  const t0 = performance.now();
  const log = await PartitionLog.open(dir);
  const ms = performance.now() - t0;
  const r = log.recoveryReport;
  console.log(`recovery (${label}): ${ms.toFixed(0)} ms, plan ${r.plan}, ${r.validatedSegments} segment(s) / ${fmt(r.validatedBytes / 2 ** 20)} MiB CRC-validated`);
  await log.close();
  return ms;
}

/** Marks the checkpoint unclean, as a crash leaves it. */
async function markCrashed(dir: string, dropCheckpoint: boolean): Promise<void> {
  const path = join(dir, CHECKPOINT_FILE);
  if (dropCheckpoint) return rm(path);
  const c = JSON.parse(await readFile(path, 'utf8'));
  const segments = (await import('node:fs/promises')).readdir(dir);
  const logs = (await segments).filter((n) => n.endsWith('.log')).sort();
  await writeFile(path, JSON.stringify({ ...c, isCleanShutdown: false, recoveryPoint: Number(logs[logs.length - 1].slice(0, 20)) }));
}

async function benchRecovery(dir: string, bytes: number): Promise<number> {
  console.log(`recovery of a ${fmt(bytes / 2 ** 20)} MiB log (${(bytes / GiB).toFixed(2)} GiB):`);
  await timeOpen(dir, 'clean shutdown');
  await markCrashed(dir, false);
  await timeOpen(dir, 'after a crash');
  await markCrashed(dir, true);
  const fullMs = await timeOpen(dir, 'no checkpoint: validate all');
  return fullMs / (bytes / GiB);
}

function fmt(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

const base = await mkdtemp(join(tmpdir(), 'runnel-log-bench-'));
try {
  console.log(`batch: ${RECORDS_PER_BATCH} records x ${RECORD_BYTES} B = ${template.length} B; data in ${base}`);
  const one = await benchAppend(base, 1);
  const eight = await benchAppend(base, 8);
  for (const d of eight.logs) await rm(d, { recursive: true, force: true });
  const read = await benchRead(one.logs[0]);
  const recoveryMsPerGiB = await benchRecovery(one.logs[0], read.bytes);
  console.log(JSON.stringify({
    bench: 'log',
    appendRecordsPerSec1: Math.round(one.recordsPerSec),
    appendRecordsPerSec8: Math.round(eight.recordsPerSec),
    readRecordsPerSec: Math.round(read.recordsPerSec),
    recoveryMsPerGiB: Math.round(recoveryMsPerGiB),
    recoveryLogBytes: read.bytes,
  }));
} finally {
  await rm(base, { recursive: true, force: true });
}
