/**
 * Kafka RecordBatch v2 records: encoding a batch from records, and decoding
 * or walking the records of a stored batch. Header layout, checks and
 * in-place setters live in batch-header.ts and are re-exported here, so
 * `record-batch.ts` is the one import for batch code.
 *
 * Record (KIP-98): length varint | attributes int8 | timestampDelta varlong |
 * offsetDelta varint | keyLength varint | key | valueLength varint | value |
 * headerCount varint | headers (keyLength varint, key, valueLength varint, value).
 * Null key/value = length −1. Decoded keys/values are subarray views of the
 * input (no copies): do not mutate the batch while you hold them.
 */
import { BATCH_CRC_START, BATCH_HEADER_BYTES, BatchAttributes, BatchField, MIN_RECORD_BYTES, RECORD_BATCH_MAGIC, fail, validateBatch, type BatchHeader, type BatchReadOptions } from './batch-header.ts';
import { writeInt16, writeInt32, writeInt64 } from './big-endian.ts';
import { crc32c, type Crc32cFn } from './crc32c.ts';
import { assert, AssertionError, type Decoded } from './error-codes.ts';
import { readUtf8, utf8Length, writeUtf8 } from './utf8.ts';
import { readVarint, readVarlong, varintSize, varlongSize, writeVarint, writeVarlong, type Cursor } from './varint.ts';
import { VERBOSE } from '#verbose';

export * from './batch-header.ts';

export interface RecordHeader { key: string; value: Uint8Array | null }

export interface RecordInput {
  key?: Uint8Array | null;
  value: Uint8Array | null;
  headers?: RecordHeader[];
  /** Defaults to the batch's baseTimestamp. */
  timestampMs?: number;
  /** Defaults to the record's index; must increase strictly. */
  offsetDelta?: number;
}

export interface RecordBatchInput {
  baseOffset?: number;
  partitionLeaderEpoch?: number;
  /** −1 (default) = not an idempotent producer. */
  producerId?: number;
  producerEpoch?: number;
  baseSequence?: number;
  /** Compression bits must be 0. */
  attributes?: number;
  /** Defaults to the first record's timestampMs, else −1 (Kafka NO_TIMESTAMP). Sans-IO: time is the caller's. */
  baseTimestamp?: number;
  records: readonly RecordInput[];
}

export interface DecodedRecord {
  offset: number;
  timestampMs: number;
  key: Uint8Array | null;
  value: Uint8Array | null;
  headers: RecordHeader[];
}

/**
 * A reusable view of one record during `forEachRecord`. NB: the same object
 * is mutated for every record; copy what you keep. Lengths are −1 for null.
 */
export interface RecordView {
  index: number;
  offset: number;
  timestampMs: number;
  keyStart: number;
  keyLength: number;
  valueStart: number;
  valueLength: number;
  headerCount: number;
  /** Position of the first header's keyLength varint. */
  headersStart: number;
}

function bytesSize(b: Uint8Array | null | undefined): number {
  return b == null ? 1 : varintSize(b.length) + b.length;
}

function recordBodySize(r: RecordInput, timestampDelta: number, offsetDelta: number): number {
  let size = 1 + varlongSize(timestampDelta) + varintSize(offsetDelta) + bytesSize(r.key) + bytesSize(r.value);
  const headers = r.headers;
  const count = headers === undefined ? 0 : headers.length;
  size += varintSize(count);
  for (let h = 0; h < count; h++) {
    const keyBytes = utf8Length(headers![h].key);
    size += varintSize(keyBytes) + keyBytes + bytesSize(headers![h].value);
  }
  return size;
}

function writeBytes(out: Uint8Array, pos: number, b: Uint8Array | null | undefined): number {
  if (b == null) return writeVarint(out, pos, -1);
  pos = writeVarint(out, pos, b.length);
  out.set(b, pos);
  return pos + b.length;
}

function writeRecord(out: Uint8Array, pos: number, r: RecordInput, bodySize: number, timestampDelta: number, offsetDelta: number): number {
  pos = writeVarint(out, pos, bodySize);
  out[pos++] = 0; // record attributes: unused in v2
  pos = writeVarlong(out, pos, timestampDelta);
  pos = writeVarint(out, pos, offsetDelta);
  pos = writeBytes(out, pos, r.key);
  pos = writeBytes(out, pos, r.value);
  const headers = r.headers;
  const count = headers === undefined ? 0 : headers.length;
  pos = writeVarint(out, pos, count);
  for (let h = 0; h < count; h++) {
    const header = headers![h];
    pos = writeVarint(out, pos, utf8Length(header.key));
    pos = writeUtf8(out, pos, header.key);
    pos = writeBytes(out, pos, header.value);
  }
  return pos;
}

function isInt32(v: number): boolean {
  return (v | 0) === v;
}

/**
 * Encodes records into one uncompressed RecordBatch v2 with its CRC, in one
 * pre-sized buffer (two passes: sizes, then bytes). `crc` lets the server
 * inject a native CRC-32C (the pure-JS one is the default).
 * @example encodeRecordBatch({ records: [{ value: new TextEncoder().encode('hi'), timestampMs: 1700000000000 }] })
 */
export function encodeRecordBatch(input: RecordBatchInput, crc: Crc32cFn = crc32c): Uint8Array {
  const records = input.records;
  const n = records.length;
  assert(n > 0, VERBOSE ? 'encodeRecordBatch needs at least one record' : '');
  const attributes = input.attributes ?? 0;
  assert((attributes & BatchAttributes.compressionMask) === 0 && (attributes & 0xffff) === attributes, VERBOSE ? 'attributes: compression must be none (0)' : '');
  const baseTimestamp = input.baseTimestamp ?? records[0].timestampMs ?? -1;
  assert(Number.isSafeInteger(baseTimestamp), VERBOSE ? `baseTimestamp must be a safe integer, got ${baseTimestamp}` : '');
  const bodySizes = new Int32Array(n);
  let total = BATCH_HEADER_BYTES;
  let maxTimestamp = Number.NEGATIVE_INFINITY;
  let lastOffsetDelta = -1;
  for (let i = 0; i < n; i++) {
    const r = records[i];
    const ts = r.timestampMs ?? baseTimestamp;
    const offsetDelta = r.offsetDelta ?? i;
    // NB: per record, so the message is built only on failure (assert() takes it built: two template strings per record).
    if (!(isInt32(offsetDelta) && offsetDelta > lastOffsetDelta)) throw new AssertionError(VERBOSE ? `record ${i}: offsetDelta must be an increasing int32` : '');
    if (!(Number.isSafeInteger(ts) && Number.isSafeInteger(ts - baseTimestamp))) throw new AssertionError(VERBOSE ? `record ${i}: timestampMs must be a safe integer` : '');
    lastOffsetDelta = offsetDelta;
    if (ts > maxTimestamp) maxTimestamp = ts;
    const size = recordBodySize(r, ts - baseTimestamp, offsetDelta);
    bodySizes[i] = size;
    total += varintSize(size) + size;
  }
  const out = new Uint8Array(total);
  writeBatchHeader(out, input, { attributes, baseTimestamp, maxTimestamp, lastOffsetDelta, total, count: n });
  let pos = BATCH_HEADER_BYTES;
  for (let i = 0; i < n; i++) {
    const r = records[i];
    pos = writeRecord(out, pos, r, bodySizes[i], (r.timestampMs ?? baseTimestamp) - baseTimestamp, r.offsetDelta ?? i);
  }
  assert(pos === total, VERBOSE ? `encoded ${pos} bytes, sized ${total}` : '');
  writeInt32(out, BatchField.crc, crc(out, BATCH_CRC_START, total));
  return out;
}

interface HeaderFigures { attributes: number; baseTimestamp: number; maxTimestamp: number; lastOffsetDelta: number; total: number; count: number }

function writeBatchHeader(out: Uint8Array, input: RecordBatchInput, f: HeaderFigures): void {
  const baseOffset = input.baseOffset ?? 0;
  const producerId = input.producerId ?? -1;
  const producerEpoch = input.producerEpoch ?? -1;
  const baseSequence = input.baseSequence ?? -1;
  const epoch = input.partitionLeaderEpoch ?? -1;
  assert(Number.isSafeInteger(baseOffset) && baseOffset >= 0, VERBOSE ? `baseOffset must be a safe non-negative integer` : '');
  assert(Number.isSafeInteger(producerId), VERBOSE ? `producerId must be a safe integer` : '');
  assert(producerEpoch === (producerEpoch << 16) >> 16, VERBOSE ? `producerEpoch must be an int16` : '');
  assert(isInt32(baseSequence) && isInt32(epoch), VERBOSE ? `baseSequence and partitionLeaderEpoch must be int32` : '');
  writeInt64(out, BatchField.baseOffset, baseOffset);
  writeInt32(out, BatchField.batchLength, f.total - 12);
  writeInt32(out, BatchField.partitionLeaderEpoch, epoch);
  out[BatchField.magic] = RECORD_BATCH_MAGIC;
  writeInt16(out, BatchField.attributes, f.attributes);
  writeInt32(out, BatchField.lastOffsetDelta, f.lastOffsetDelta);
  writeInt64(out, BatchField.baseTimestamp, f.baseTimestamp);
  writeInt64(out, BatchField.maxTimestamp, f.maxTimestamp);
  writeInt64(out, BatchField.producerId, producerId);
  writeInt16(out, BatchField.producerEpoch, producerEpoch);
  writeInt32(out, BatchField.baseSequence, baseSequence);
  writeInt32(out, BatchField.recordCount, f.count);
}

/** Reads a byte-field length (−1 = null) and skips its bytes; returns −2 when invalid. */
function skipBytes(b: Uint8Array, cur: Cursor): number {
  const length = readVarint(b, cur);
  if (length !== length || length < -1 || length > cur.end - cur.pos) return -2;
  if (length > 0) cur.pos += length;
  return length;
}

/** walkRecord's answer for a record over maxHeadersPerRecord (MESSAGE_TOO_LARGE; every other problem is CORRUPT_MESSAGE), also without messages. */
const TOO_MANY_HEADERS = 'record has';

/** Parses one record at `cur.pos` into `view`; returns an error message or null. `view.offset` holds the previous offset. */
function walkRecord(b: Uint8Array, cur: Cursor, header: BatchHeader, view: RecordView, maxHeaders: number): string | null {
  const batchEnd = cur.end;
  const length = readVarint(b, cur);
  if (length !== length || length < MIN_RECORD_BYTES - 1 || length > batchEnd - cur.pos) return VERBOSE ? 'record length is invalid or runs past the batch' : 'corrupt record';
  const recordEnd = cur.pos + length;
  cur.end = recordEnd;
  cur.pos++; // record attributes: unused in v2
  const timestampDelta = readVarlong(b, cur);
  const offsetDelta = readVarint(b, cur);
  if (timestampDelta !== timestampDelta || offsetDelta !== offsetDelta) return VERBOSE ? 'record timestampDelta/offsetDelta varint is invalid' : 'corrupt record';
  const offset = header.baseOffset + offsetDelta;
  if (offset <= view.offset || offsetDelta > header.lastOffsetDelta) return VERBOSE ? `record offsetDelta ${offsetDelta} out of order or above lastOffsetDelta` : 'corrupt record';
  const timestampMs = header.attributes & BatchAttributes.logAppendTime ? header.maxTimestamp : header.baseTimestamp + timestampDelta;
  if (!Number.isSafeInteger(timestampMs)) return VERBOSE ? 'record timestamp outside ±(2^53-1)' : 'corrupt record';
  const keyLength = readVarint(b, cur);
  if (keyLength !== keyLength || keyLength < -1 || keyLength > recordEnd - cur.pos) return VERBOSE ? 'record key length is invalid' : 'corrupt record';
  view.keyStart = cur.pos;
  if (keyLength > 0) cur.pos += keyLength;
  const valueLength = readVarint(b, cur);
  if (valueLength !== valueLength || valueLength < -1 || valueLength > recordEnd - cur.pos) return VERBOSE ? 'record value length is invalid' : 'corrupt record';
  view.valueStart = cur.pos;
  if (valueLength > 0) cur.pos += valueLength;
  const headerCount = readVarint(b, cur);
  if (headerCount !== headerCount || headerCount < 0 || headerCount * 2 > recordEnd - cur.pos) return VERBOSE ? 'record header count is invalid' : 'corrupt record';
  if (headerCount > maxHeaders) return VERBOSE ? `record has ${headerCount} headers, limit ${maxHeaders}` : TOO_MANY_HEADERS;
  view.headersStart = cur.pos;
  for (let h = 0; h < headerCount; h++) {
    if (skipBytes(b, cur) < 0 || skipBytes(b, cur) < -1) return VERBOSE ? 'record header key/value length is invalid' : 'corrupt record';
  }
  if (cur.pos !== recordEnd) return VERBOSE ? 'record length does not match its fields' : 'corrupt record';
  cur.end = batchEnd;
  view.offset = offset;
  view.timestampMs = timestampMs;
  view.keyLength = keyLength;
  view.valueLength = valueLength;
  view.headerCount = headerCount;
  return null;
}

/**
 * Hot-path walk over the records of a batch whose header was already read
 * (and CRC-checked, e.g. by validateBatch). Calls `visit` with one reused
 * RecordView per record, allocating nothing per record. Returns the number
 * of records visited. NB: on a structural error the records before it were
 * already visited; the error says where it stopped.
 * @example forEachRecord(bytes, 0, header, (r) => sum += r.valueLength)
 */
export function forEachRecord(bytes: Uint8Array, at: number, header: BatchHeader, visit: (record: RecordView) => void, limits?: BatchReadOptions): Decoded<number> {
  const cur: Cursor = { pos: at + BATCH_HEADER_BYTES, end: at + header.totalBytes };
  if (at < 0 || cur.end > bytes.length) return fail('CORRUPT_MESSAGE', VERBOSE ? 'batch runs past the buffer' : '');
  const view: RecordView = { index: 0, offset: header.baseOffset - 1, timestampMs: 0, keyStart: 0, keyLength: -1, valueStart: 0, valueLength: -1, headerCount: 0, headersStart: 0 };
  const maxHeaders = limits?.maxHeadersPerRecord ?? Number.POSITIVE_INFINITY;
  for (let i = 0; i < header.recordCount; i++) {
    const problem = walkRecord(bytes, cur, header, view, maxHeaders);
    if (problem !== null) return fail(problem.startsWith(TOO_MANY_HEADERS) ? 'MESSAGE_TOO_LARGE' : 'CORRUPT_MESSAGE', VERBOSE ? `record ${i}: ${problem}` : '');
    view.index = i;
    visit(view);
  }
  if (cur.pos !== cur.end) return fail('CORRUPT_MESSAGE', VERBOSE ? `batch has ${cur.end - cur.pos} bytes after its ${header.recordCount} records` : '');
  return { ok: true, value: header.recordCount };
}

/** Decodes the headers of the record in `view` (structure already checked); null on invalid UTF-8 keys. */
export function readRecordHeaders(bytes: Uint8Array, view: Pick<RecordView, 'headersStart' | 'headerCount'>): RecordHeader[] | null {
  const headers: RecordHeader[] = [];
  const cur: Cursor = { pos: view.headersStart, end: bytes.length };
  for (let h = 0; h < view.headerCount; h++) {
    const keyLength = readVarint(bytes, cur);
    const key = readUtf8(bytes, cur.pos, cur.pos + keyLength);
    if (key === null) return null;
    cur.pos += keyLength;
    const valueLength = readVarint(bytes, cur);
    headers.push({ key, value: valueLength < 0 ? null : bytes.subarray(cur.pos, cur.pos + valueLength) });
    if (valueLength > 0) cur.pos += valueLength;
  }
  return headers;
}

/**
 * Checks the header, the CRC (unless `limits.verifyCrc === false`) and every
 * record, then returns them with key/value/header values as views of `bytes`.
 */
export function decodeRecordBatch(bytes: Uint8Array, at = 0, limits?: BatchReadOptions): Decoded<{ header: BatchHeader; records: DecodedRecord[] }> {
  const checked = validateBatch(bytes, at, limits);
  if (!checked.ok) return checked;
  const header = checked.value;
  const records: DecodedRecord[] = [];
  let badHeaderKey = -1;
  const walked = forEachRecord(bytes, at, header, (r) => {
    const headers = r.headerCount === 0 ? [] : readRecordHeaders(bytes, r);
    if (headers === null) {
      if (badHeaderKey < 0) badHeaderKey = r.index;
      return;
    }
    records.push({
      offset: r.offset,
      timestampMs: r.timestampMs,
      key: r.keyLength < 0 ? null : bytes.subarray(r.keyStart, r.keyStart + r.keyLength),
      value: r.valueLength < 0 ? null : bytes.subarray(r.valueStart, r.valueStart + r.valueLength),
      headers,
    });
  }, limits);
  if (!walked.ok) return walked;
  if (badHeaderKey >= 0) return fail('CORRUPT_MESSAGE', VERBOSE ? `record ${badHeaderKey}: header key is not valid UTF-8` : '');
  return { ok: true, value: { header, records } };
}

/**
 * Full check a broker runs once per produced batch before storing it:
 * header, CRC, and every record's structure and header-key UTF-8, so no
 * subscriber ever receives a batch it cannot decode.
 */
export function validateRecords(bytes: Uint8Array, at = 0, limits?: BatchReadOptions): Decoded<BatchHeader> {
  const checked = validateBatch(bytes, at, limits);
  if (!checked.ok) return checked;
  let badHeaderKey = -1;
  const walked = forEachRecord(bytes, at, checked.value, (r) => {
    if (r.headerCount > 0 && badHeaderKey < 0 && readRecordHeaders(bytes, r) === null) badHeaderKey = r.index;
  }, limits);
  if (!walked.ok) return walked;
  if (badHeaderKey >= 0) return fail('CORRUPT_MESSAGE', VERBOSE ? `record ${badHeaderKey}: header key is not valid UTF-8` : '');
  return checked;
}
