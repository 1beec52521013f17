/**
 * In-process cost of the SDK producer per record, without sockets or a
 * broker (not a benchmark of its own; `npm run bench -- sdk` measures the
 * whole path): one Producer over a fake connection that answers each
 * produce on setImmediate, memoryStorage, 1,024 lanes each awaiting one
 * send at a time (the sdk bench's producer phase), ~100 B JSON values.
 * SRC=<dir> runs another copy of client-sdk/src for a before/after,
 * SECONDS (3), HEAP=<file> writes a sampled heap profile of everything
 * allocated (collected or not). CPU per record is process.cpuUsage (all
 * threads, GC too).
 *   node --conditions=runnel-source --import tsx test/bench/sdk-producer-inprocess.ts
 */
import { fileURLToPath } from 'node:url';
import { startProfiles } from './inspector-profiles.ts';

const SRC = process.env.SRC ?? fileURLToPath(new URL('../../client-sdk/src', import.meta.url));
const { Producer } = await import(`${SRC}/producer.ts`) as typeof import('../../client-sdk/src/producer.ts');
const { defaultClientLimits } = await import(`${SRC}/limits.ts`) as typeof import('../../client-sdk/src/limits.ts');
const { memoryStorage } = await import(`${SRC}/memory-storage.ts`) as typeof import('../../client-sdk/src/memory-storage.ts');
type Connection = ConstructorParameters<typeof Producer>[0];

const LANES = 1024;
let nextOffset = 0, batches = 0, records = 0;
/** Record count of a RecordBatch v2 (big-endian int32 at byte 57). */
const countOf = (b: Uint8Array): number => new DataView(b.buffer, b.byteOffset, b.byteLength).getInt32(57);
const conn = {
  state: 'connected', helloOk: { maxInflightProduce: 256 }, url: 'fake://',
  speak() {}, on() {},
  request(f: { type: string; topics?: string[]; batch?: Uint8Array }) {
    if (f.type === 'initProducer') return Promise.resolve({ errorCode: 0, producerId: 1, producerEpoch: 0, producerSecret: 's' });
    if (f.type === 'metadataRequest') return Promise.resolve({ topics: f.topics!.map((name) => ({ name, errorCode: 0, partitions: [{}] })) });
    const n = countOf(f.batch!);
    batches++;
    return new Promise((resolve) => setImmediate(() => { records += n; resolve({ errorCode: 0, baseOffset: (nextOffset += n) - n }); }));
  },
} as unknown as Connection;
const producer = new Producer(conn, memoryStorage().outbox, defaultClientLimits, Math.random, (e) => console.error(e));
const value = { t: 0, p: 'x'.repeat(88) };
await producer.send('t', value);

const stopProfiles = process.env.HEAP ? startProfiles({ heap: process.env.HEAP, heapSamplingBytes: 1024 }) : null;
let running = true, count = 0;
const lane = async (): Promise<void> => {
  while (running) {
    await producer.send('t', value);
    count++;
  }
};
const t0 = performance.now(), cpu0 = process.cpuUsage();
setTimeout(() => { running = false; }, Number(process.env.SECONDS ?? 3) * 1000);
await Promise.all(Array.from({ length: LANES }, lane));
const seconds = (performance.now() - t0) / 1000, cpu = process.cpuUsage(cpu0);
stopProfiles?.();
console.log(JSON.stringify({ sendsPerSec: Math.round(count / seconds), cpuUsPerRecord: Number(((cpu.user + cpu.system) / count).toFixed(3)), recordsPerBatch: Math.round(records / batches) }));
