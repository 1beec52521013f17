/**
 * `npm run bench -- codec`: CRC-32C pure JS (slice-by-8) vs @node-rs/crc32
 * (native) on 1 MiB and 100 KB buffers; RecordBatch v2 encode, decode and
 * forEachRecord for batches of 1,000 × 100-byte records; frame codec for
 * the records hot path. Prints human lines, then one JSON line.
 */
import { crc32c as nativeCrc32c } from '@node-rs/crc32';
import { crc32c, decodeRecordBatch, encodeRecordBatch, encodeRecordsFrame, decodeRecordsFrame, forEachRecord, validateBatch, type RecordInput } from '@runnel/client/codec';
import { assertNativeUws } from '../../server/src/broker/uws.ts';

assertNativeUws();

/** Runs `fn` repeatedly for about `ms` after a warm-up; returns calls per second. */
function rate(fn: () => void, ms = 700): number {
  for (let i = 0; i < 20; i++) fn();
  let calls = 0;
  const start = performance.now();
  let now = start;
  while (now - start < ms) {
    for (let i = 0; i < 10; i++) fn();
    calls += 10;
    now = performance.now();
  }
  return (calls * 1000) / (now - start);
}

function pseudoRandom(size: number): Uint8Array {
  const b = new Uint8Array(size);
  let x = 0x9e3779b9;
  for (let i = 0; i < size; i++) {
    x ^= x << 13; x ^= x >>> 17; x ^= x << 5;
    b[i] = x;
  }
  return b;
}

const nativeRange = (b: Uint8Array, s: number, e: number) => nativeCrc32c(Buffer.from(b.buffer, b.byteOffset + s, e - s));
const mbps = (callsPerSec: number, bytes: number) => Math.round((callsPerSec * bytes) / 1e6);
const figures: Record<string, number> = {};

for (const [label, size] of [['1MiB', 1 << 20], ['100KB', 100_000]] as const) {
  const data = pseudoRandom(size);
  let sink = 0;
  figures[`crc32cJsMBps_${label}`] = mbps(rate(() => { sink ^= crc32c(data); }), size);
  figures[`crc32cNativeMBps_${label}`] = mbps(rate(() => { sink ^= nativeRange(data, 0, size); }), size);
  console.log(`crc32c ${label}: pure JS ${figures[`crc32cJsMBps_${label}`]} MB/s, @node-rs/crc32 ${figures[`crc32cNativeMBps_${label}`]} MB/s (${sink & 1})`);
}

const RECORDS = 1000;
const value = pseudoRandom(100);
const records: RecordInput[] = Array.from({ length: RECORDS }, (_, i) => ({ value, timestampMs: 1_700_000_000_000 + i }));
const batch = encodeRecordBatch({ records });
const perSec = (batchesPerSec: number) => Math.round(batchesPerSec * RECORDS);

figures.encodeRecordsPerSec = perSec(rate(() => { encodeRecordBatch({ records }); }));
figures.encodeNativeCrcRecordsPerSec = perSec(rate(() => { encodeRecordBatch({ records }, nativeRange); }));
figures.decodeRecordsPerSec = perSec(rate(() => { decodeRecordBatch(batch); }));
figures.decodeNativeCrcRecordsPerSec = perSec(rate(() => { decodeRecordBatch(batch, 0, { crc: nativeRange }); }));
let bytesSeen = 0;
figures.forEachRecordRecordsPerSec = perSec(rate(() => {
  const header = validateBatch(batch, 0, undefined, nativeRange);
  if (header.ok) forEachRecord(batch, 0, header.value, (r) => { bytesSeen += r.valueLength; });
}));
figures.validateBatchJsPerSec = Math.round(rate(() => { validateBatch(batch); }));
figures.recordsFrameEncodeDecodePerSec = Math.round(rate(() => { decodeRecordsFrame(encodeRecordsFrame('events', 3, 123456, batch)); }));
figures.batchBytes = batch.length;

console.log(`RecordBatch of ${RECORDS} × 100 B (${batch.length} bytes):`);
console.log(`  encode (JS CRC)   ${figures.encodeRecordsPerSec.toLocaleString()} records/s`);
console.log(`  encode (native)   ${figures.encodeNativeCrcRecordsPerSec.toLocaleString()} records/s`);
console.log(`  decode (JS CRC)   ${figures.decodeRecordsPerSec.toLocaleString()} records/s`);
console.log(`  decode (native)   ${figures.decodeNativeCrcRecordsPerSec.toLocaleString()} records/s`);
console.log(`  forEachRecord     ${figures.forEachRecordRecordsPerSec.toLocaleString()} records/s (${bytesSeen > 0 ? 'ok' : '?'})`);
console.log(`  validateBatch     ${figures.validateBatchJsPerSec.toLocaleString()} batches/s (JS CRC)`);
console.log(`  records frame     ${figures.recordsFrameEncodeDecodePerSec.toLocaleString()} encode+decode/s`);
console.log(JSON.stringify({ bench: 'codec', ...figures }));
