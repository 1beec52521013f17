/**
 * In-process cost of the SDK consumer per record, without sockets (not a
 * benchmark of its own; `npm run bench -- sdk` measures the whole path):
 * N subscriptions, each handed FRAMES pre-encoded RecordsFrames (8 batches
 * x 64 records, ~90 B JSON values, a fresh copy of the bytes per delivery in a Buffer,
 * as a socket gives) through the StreamReader seam, the handler reading
 * every `value`. MODE=raw only walks batch headers (the floor of this
 * harness), MODE=batch uses a batch handler, MODE=offset a per-record
 * handler that reads only `offset` (the SDK without the value's UTF-8 and
 * JSON.parse: the difference to MODE=record is that floor). SRC=<dir> runs another copy
 * of client-sdk/src (e.g. `git show` of an older commit) for a before/after, or a compiled
 * one (SRC=client-sdk/dist: what Node apps run, without tsx's per-closure `__name`).
 * CPU time per record comes from process.cpuUsage (all threads, GC too),
 * which a loaded machine inflates less than wall time.
 *   node --conditions=runnel-source --import tsx test/bench/sdk-consumers-decode.ts
 */
import { fileURLToPath } from 'node:url';

const SRC = process.env.SRC ?? fileURLToPath(new URL('../../client-sdk/src', import.meta.url));
/** A compiled copy (a `dist` directory, e.g. client-sdk/dist after `npm run build`) is imported as JavaScript. */
const ext = SRC.replace(/\/$/, '').endsWith('dist') ? 'js' : 'ts';
const { Subscription } = await import(`${SRC}/consumer.${ext}`) as typeof import('../../client-sdk/src/consumer.ts');
const { memoryStorage } = await import(`${SRC}/memory-storage.${ext}`) as typeof import('../../client-sdk/src/memory-storage.ts');
const { encodeRecordBatch, readBatchHeader } = await import(`${SRC}/codec/record-batch.${ext}`) as typeof import('../../client-sdk/src/codec/record-batch.ts');
type Reader = import('../../client-sdk/src/partition-stream.ts').StreamReader;

const N = Number(process.env.N ?? 100), FRAMES = Number(process.env.FRAMES ?? 20), BATCHES = Number(process.env.BATCHES ?? 8), PER = Number(process.env.PER ?? 64);
const mode = process.env.MODE ?? 'record';
const enc = new TextEncoder();

function frameBytes(base: number): Uint8Array {
  const parts = Array.from({ length: BATCHES }, (_, b) => encodeRecordBatch({
    baseOffset: base + b * PER,
    records: Array.from({ length: PER }, (_, i) => ({ key: enc.encode(`k${i % 13}`), value: enc.encode(JSON.stringify({ n: base + b * PER + i, path: `/p/${'x'.repeat(60)}` })), timestampMs: 1_700_000_000_000 + i })),
  }));
  const out = new Uint8Array(parts.reduce((s, p) => s + p.length, 0));
  let at = 0;
  for (const p of parts) { out.set(p, at); at += p.length; }
  return out;
}

const template = Array.from({ length: FRAMES }, (_, f) => frameBytes(f * BATCHES * PER));
let sum = 0, delivered = 0;
const done: Promise<void>[] = [];
const c0 = process.cpuUsage(), t0 = performance.now();
for (let s = 0; s < N; s++) {
  let finish!: () => void;
  done.push(new Promise<void>((r) => (finish = r)));
  let i = 0;
  if (mode === 'raw') {
    const walk = (): void => {
      if (i === FRAMES) return finish();
      const f = Buffer.from(template[i++]);
      for (let at = 0; at < f.length;) { const h = readBatchHeader(f, at); if (!h.ok) throw new Error(h.message); delivered += h.value.recordCount; at += h.value.totalBytes; }
      queueMicrotask(walk);
    };
    queueMicrotask(walk);
    continue;
  }
  let reader!: Reader;
  const next = (): void => {
    if (i === FRAMES) return finish();
    const first = i * BATCHES * PER;
    reader.deliver({ type: 'records', topic: 't', partition: 0, highWatermark: 1e9, batches: Buffer.from(template[i++]) }, first, first + BATCHES * PER - 1, { release: next });
  };
  const start = (): void => {
    reader.subscribed({ type: 'subscribed', requestId: 1, topic: 't', partition: 0, errorCode: 0, topicId: 'id', startOffset: 0, logStartOffset: 0, highWatermark: 1e9 } as never, true);
    next();
  };
  const streams = { attach(_t: string, _p: number, r: Reader) { reader = r; queueMicrotask(start); }, detach() {} };
  const deps = { streams, offsets: memoryStorage().offsets, partitionCount: async () => 1, reportError: (e: unknown) => { throw e; } } as never;
  type V = { n: number };
  if (mode === 'batch') new Subscription<V>(deps, 't', () => {}, { from: 'earliest' }, (records) => { for (const r of records) { sum += r.value.n; delivered++; } });
  else if (mode === 'offset') new Subscription<V>(deps, 't', (r) => { sum += r.offset; delivered++; }, { from: 'earliest' });
  else new Subscription<V>(deps, 't', (r) => { sum += r.value.n; delivered++; }, { from: 'earliest' });
}
await Promise.all(done);
const ms = performance.now() - t0, cpu = process.cpuUsage(c0);
console.log(JSON.stringify({ mode, subscriptions: N, records: delivered, cpuNsPerRecord: Math.round(((cpu.user + cpu.system) * 1000) / delivered), wallNsPerRecord: Math.round((ms * 1e6) / delivered), checksum: sum }));
