/**
 * Binary encoder/decoder for every protocol frame: `[u8 kind][fields]`,
 * fields laid out by the table in frame-schema.ts. One codec for broker and
 * SDK. Decoding never throws on bad bytes: it returns `{ ok: false }` with
 * INVALID_FRAME (unknown kind, truncation, trailing bytes, bad UTF-8, bad
 * enum, unsafe int64) or MESSAGE_TOO_LARGE (frame, string or array over its
 * limit). Encoding a frame whose fields do not fit their wire types is a
 * programmer error (assert).
 *
 * Hot path: `encodeRecordsFrame` writes a RecordsFrame header and copies the
 * batch bytes once; the broker sends those same bytes to every subscriber.
 * Decoded `bytes` fields (produce.batch, records.batches) are views into the
 * input, not copies: a broker must copy them out of uWS's message buffer
 * before the callback returns (STYLE.md rule 11).
 */
import { readInt16, readInt32, readInt64, readUint16, readUint32, writeInt16, writeInt32, writeInt64 } from './big-endian.ts';
import { assert, AssertionError, type Decoded, type ErrorName } from './error-codes.ts';
import { FrameSchema, StartPositionTag, type FieldType, type Fields, type FrameSchemas, type ScalarType } from './frame-schema.ts';
import { FrameKind, type Frame, type FrameType, type RecordsFrame, type StartPosition } from './protocol.ts';
import { readUtf8, utf8Length, writeUtf8 } from './utf8.ts';
import { VERBOSE } from '#verbose';

export interface FrameLimits {
  /** Largest frame accepted (bytes). Default: unbounded. */
  maxFrameBytes?: number;
  /** Largest string field (UTF-8 bytes). Default and hard maximum: 65535 (u16 length). */
  maxStringBytes?: number;
  /** Most elements in one array field. Default 100,000. */
  maxArrayLength?: number;
}

const MAX_U16 = 0xffff;
const DEFAULT_MAX_ARRAY_LENGTH = 100_000;

const typeByKind: (FrameType | undefined)[] = [];
for (const type of Object.keys(FrameKind) as FrameType[]) typeByKind[FrameKind[type]] = type;

/** Frame type of an encoded frame from its first byte, or null if empty/unknown. */
export function peekFrameKind(bytes: Uint8Array): FrameType | null {
  return bytes.length === 0 ? null : typeByKind[bytes[0]] ?? null;
}

// ---------------------------------------------------------------- encoding

type IntType = Exclude<ScalarType, 'string' | 'bytes' | 'startPosition'>;
/** Integer wire types: [bytes, min, max, unsigned]. One table drives sizing, range checks, writing and reading. */
const INT: Record<IntType, readonly [bytes: 1 | 2 | 4 | 8, min: number, max: number, unsigned?: true]> = {
  i8: [1, -128, 127], acks: [1, -1, 1], i16: [2, -32768, 32767], u16: [2, 0, MAX_U16, true],
  i32: [4, -(2 ** 31), 2 ** 31 - 1], u32: [4, 0, 2 ** 32 - 1, true], i64: [8, Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER],
};
const isInt = (type: ScalarType): type is IntType => type in INT;

function assertInt(value: unknown, type: IntType, name: string): void {
  const [, min, max] = INT[type];
  // NB: on every field of every frame encoded: the message is built only on failure (assert() takes it built).
  if (!(Number.isInteger(value) && (value as number) >= min && (value as number) <= max)) throw new AssertionError(VERBOSE ? `${name} must be an integer in [${min}, ${max}], got ${String(value)}` : '');
}

/** Encoded size of `value` as `type`; asserts that the value fits its wire type. */
function sizeOf(value: unknown, type: FieldType, name: string): number {
  if (typeof type === 'object') {
    if (!('array' in type)) return sizeOfFields(value as Record<string, unknown>, type.struct);
    if (!Array.isArray(value)) throw new AssertionError(VERBOSE ? `${name} must be an array` : '');
    let size = 4;
    for (const element of value) size += sizeOf(element, type.array, name);
    return size;
  }
  if (isInt(type)) return assertInt(value, type, name), INT[type][0];
  if (type === 'string') {
    if (typeof value !== 'string') throw new AssertionError(VERBOSE ? `${name} must be a string` : '');
    const length = utf8Length(value);
    if (length > MAX_U16) throw new AssertionError(VERBOSE ? `${name} is ${length} UTF-8 bytes; strings are limited to 65535` : '');
    return 2 + length;
  }
  if (type === 'bytes') {
    if (!(value instanceof Uint8Array)) throw new AssertionError(VERBOSE ? `${name} must be a Uint8Array` : '');
    return 4 + value.length;
  }
  const from = value as StartPosition;
  if (!(typeof from === 'object' && from !== null && from.kind in StartPositionTag)) throw new AssertionError(VERBOSE ? `${name} must be a StartPosition (earliest|latest|offset|timestamp)` : '');
  if (from.kind === 'earliest' || from.kind === 'latest') return 1;
  if (from.kind === 'offset') {
    assertInt(from.offset, 'i64', `${name}.offset`);
    if (from.offset < 0) throw new AssertionError(VERBOSE ? `${name}.offset must be >= 0` : '');
  }
  else assertInt(from.timestampMs, 'i64', `${name}.timestampMs`);
  return 9;
}

function sizeOfFields(value: Record<string, unknown>, fields: Fields): number {
  assert(typeof value === 'object' && value !== null, VERBOSE ? 'frame field must be an object' : '');
  let size = 0;
  for (const [name, type] of fields) size += sizeOf(value[name], type, name);
  return size;
}

function writeInt(out: Uint8Array, pos: number, value: number, bytes: 1 | 2 | 4 | 8): number {
  if (bytes === 1) out[pos] = value;
  else if (bytes === 2) writeInt16(out, pos, value);
  else if (bytes === 4) writeInt32(out, pos, value);
  else writeInt64(out, pos, value);
  return pos + bytes;
}

function write(out: Uint8Array, pos: number, value: unknown, type: FieldType): number {
  if (typeof type === 'object') {
    if (!('array' in type)) return writeFields(out, pos, value as Record<string, unknown>, type.struct);
    pos = writeInt(out, pos, (value as unknown[]).length, 4);
    for (const element of value as unknown[]) pos = write(out, pos, element, type.array);
    return pos;
  }
  if (isInt(type)) return writeInt(out, pos, value as number, INT[type][0]);
  if (type === 'string') {
    const end = writeUtf8(out, pos + 2, value as string);
    writeInt16(out, pos, end - pos - 2);
    return end;
  }
  if (type === 'bytes') {
    const b = value as Uint8Array;
    out.set(b, writeInt(out, pos, b.length, 4));
    return pos + 4 + b.length;
  }
  const from = value as StartPosition;
  out[pos] = StartPositionTag[from.kind];
  if (from.kind === 'earliest' || from.kind === 'latest') return pos + 1;
  return writeInt(out, pos + 1, from.kind === 'offset' ? from.offset : from.timestampMs, 8);
}

function writeFields(out: Uint8Array, pos: number, value: Record<string, unknown>, fields: Fields): number {
  for (const [name, type] of fields) pos = write(out, pos, value[name], type);
  return pos;
}

/**
 * Encodes any frame. Asserts (programmer error) on fields that do not fit their wire type.
 * @example encodeFrame({ type: 'ping', nonce: 7 }) // Uint8Array [23, 0, 0, 0, 7]
 */
export function encodeFrame(frame: Frame): Uint8Array {
  return encodeFrameWith(FrameSchema, frame);
}

/** A subset of the frame tables (frame-schema.ts): what one side of one client speaks. */
export type SomeFrameSchemas = Partial<FrameSchemas>;

/** `encodeFrame` with the tables of `schemas` only (a client bundles the tables its parts use). */
export function encodeFrameWith(schemas: SomeFrameSchemas, frame: Frame): Uint8Array {
  const fields = schemas[frame.type] as Fields | undefined;
  if (fields === undefined) throw new AssertionError(VERBOSE ? `unknown frame type ${String(frame.type)}` : '');
  const value = frame as unknown as Record<string, unknown>;
  const out = new Uint8Array(1 + sizeOfFields(value, fields));
  out[0] = FrameKind[frame.type];
  const end = writeFields(out, 1, value, fields);
  if (end !== out.length) throw new AssertionError(VERBOSE ? `frame ${frame.type}: wrote ${end} bytes, sized ${out.length}` : '');
  return out;
}

/**
 * Hot path for the broker: a RecordsFrame around stored batch bytes, copied
 * once. Same bytes as `encodeFrame({ type: 'records', ... })`.
 */
export function encodeRecordsFrame(topic: string, partition: number, highWatermark: number, batches: Uint8Array): Uint8Array {
  const topicBytes = utf8Length(topic);
  assert(topicBytes <= MAX_U16, VERBOSE ? 'topic name longer than 65535 UTF-8 bytes' : '');
  assert((partition | 0) === partition && Number.isSafeInteger(highWatermark), VERBOSE ? 'partition must be an int32 and highWatermark a safe integer' : '');
  const header = 1 + 2 + topicBytes + 4 + 8 + 4;
  const out = new Uint8Array(header + batches.length);
  out[0] = FrameKind.records;
  writeInt16(out, 1, topicBytes);
  let pos = writeUtf8(out, 3, topic);
  writeInt32(out, pos, partition);
  writeInt64(out, pos + 4, highWatermark);
  writeInt32(out, pos + 12, batches.length);
  out.set(batches, header);
  return out;
}

// ---------------------------------------------------------------- decoding

/** Internal: carries a coded failure out of the recursive readers; caught only in decodeFrame. */
class FrameDecodeError {
  constructor(readonly code: ErrorName, readonly message: string) {}
}

function minSize(type: FieldType): number {
  if (typeof type === 'object') {
    if ('array' in type) return 4;
    let size = 0;
    for (const [, field] of type.struct) size += minSize(field);
    return size;
  }
  return isInt(type) ? INT[type][0] : type === 'string' ? 2 : type === 'bytes' ? 4 : 1;
}

class FrameReader {
  pos = 1;
  readonly #b: Uint8Array;
  readonly #maxStringBytes: number;
  readonly #maxArrayLength: number;
  constructor(b: Uint8Array, maxStringBytes: number, maxArrayLength: number) {
    this.#b = b;
    this.#maxStringBytes = maxStringBytes;
    this.#maxArrayLength = maxArrayLength;
  }

  /** Position of the next `n` bytes (then skipped); throws INVALID_FRAME when the frame ends first. */
  #take(n: number, name: string): number {
    const at = this.pos;
    if (this.#b.length - at < n) throw new FrameDecodeError('INVALID_FRAME', VERBOSE ? `frame truncated in ${name}` : '');
    this.pos = at + n;
    return at;
  }

  readFields(fields: Fields, into: Record<string, unknown>): Record<string, unknown> {
    for (const [name, type] of fields) into[name] = this.read(type, name);
    return into;
  }

  read(type: FieldType, name: string): unknown {
    if (typeof type === 'object') return 'array' in type ? this.#readArray(type.array, name) : this.readFields(type.struct, {});
    if (isInt(type)) return this.#readInt(type, name);
    if (type === 'string') return this.#readString(name);
    if (type === 'bytes') {
      const length = readUint32(this.#b, this.#take(4, name));
      const at = this.#take(length, name);
      return this.#b.subarray(at, at + length);
    }
    return this.#readStartPosition(name);
  }

  #readInt(type: IntType, name: string): number {
    const [bytes, min, max, unsigned] = INT[type];
    const at = this.#take(bytes, name);
    const b = this.#b;
    const value = bytes === 1 ? (b[at] << 24) >> 24 : bytes === 2 ? (unsigned ? readUint16(b, at) : readInt16(b, at))
      : bytes === 4 ? (unsigned ? readUint32(b, at) : readInt32(b, at)) : readInt64(b, at);
    // NB: readInt64 returns NaN outside ±(2^53−1); NaN fails both comparisons.
    if (!(value >= min && value <= max)) throw new FrameDecodeError('INVALID_FRAME', VERBOSE ? `${name} is outside [${min}, ${max}]` : '');
    return value;
  }

  #readString(name: string): string {
    const length = readUint16(this.#b, this.#take(2, name));
    if (length > this.#maxStringBytes) throw new FrameDecodeError('MESSAGE_TOO_LARGE', VERBOSE ? `${name} is ${length} bytes, limit ${this.#maxStringBytes}` : '');
    const at = this.#take(length, name);
    const s = readUtf8(this.#b, at, at + length);
    if (s === null) throw new FrameDecodeError('INVALID_FRAME', VERBOSE ? `${name} is not valid UTF-8` : '');
    return s;
  }

  #readArray(type: FieldType, name: string): unknown[] {
    const count = readUint32(this.#b, this.#take(4, name));
    if (count > this.#maxArrayLength) throw new FrameDecodeError('MESSAGE_TOO_LARGE', VERBOSE ? `${name} has ${count} elements, limit ${this.#maxArrayLength}` : '');
    // NB: checked before allocating, so a forged count cannot make us build a huge array.
    if (count * minSize(type) > this.#b.length - this.pos) throw new FrameDecodeError('INVALID_FRAME', VERBOSE ? `${name} count ${count} cannot fit the frame` : '');
    const out = new Array<unknown>(count);
    for (let i = 0; i < count; i++) out[i] = this.read(type, name);
    return out;
  }

  #readStartPosition(name: string): StartPosition {
    const tag = this.#b[this.#take(1, name)];
    if (tag === StartPositionTag.earliest) return { kind: 'earliest' };
    if (tag === StartPositionTag.latest) return { kind: 'latest' };
    if (tag === StartPositionTag.offset) {
      const offset = this.#readInt('i64', `${name}.offset`);
      if (offset < 0) throw new FrameDecodeError('INVALID_FRAME', VERBOSE ? `${name}.offset is negative` : '');
      return { kind: 'offset', offset };
    }
    if (tag === StartPositionTag.timestamp) return { kind: 'timestamp', timestampMs: this.#readInt('i64', `${name}.timestampMs`) };
    throw new FrameDecodeError('INVALID_FRAME', VERBOSE ? `${name} has unknown tag ${tag}` : '');
  }
}

function checkFrameSize(bytes: Uint8Array, limits: FrameLimits | undefined): Decoded<never> | null {
  if (bytes.length === 0) return { ok: false, code: 'INVALID_FRAME', message: VERBOSE ? 'empty frame' : '' };
  const max = limits?.maxFrameBytes;
  if (max !== undefined && bytes.length > max) return { ok: false, code: 'MESSAGE_TOO_LARGE', message: VERBOSE ? `frame of ${bytes.length} bytes exceeds maxFrameBytes ${max}` : '' };
  return null;
}

/**
 * Decodes one frame. Never throws on bad bytes.
 * @example decodeFrame(encodeFrame({ type: 'ping', nonce: 7 })) // { ok: true, value: { type: 'ping', nonce: 7 } }
 */
export function decodeFrame(bytes: Uint8Array, limits?: FrameLimits): Decoded<Frame> {
  return decodeFrameWith(FrameSchema, bytes, limits);
}

/** `decodeFrame` with the tables of `schemas` only: a kind they lack is INVALID_FRAME like an unknown one. */
export function decodeFrameWith(schemas: SomeFrameSchemas, bytes: Uint8Array, limits?: FrameLimits): Decoded<Frame> {
  const bad = checkFrameSize(bytes, limits);
  if (bad !== null) return bad;
  const type = typeByKind[bytes[0]];
  const fields = type === undefined ? undefined : schemas[type] as Fields | undefined;
  if (fields === undefined) return { ok: false, code: 'INVALID_FRAME', message: VERBOSE ? `unknown frame kind ${bytes[0]}` : '' };
  if (type === 'records') return decodeRecordsFrame(bytes, limits);
  const reader = new FrameReader(bytes, Math.min(limits?.maxStringBytes ?? MAX_U16, MAX_U16), limits?.maxArrayLength ?? DEFAULT_MAX_ARRAY_LENGTH);
  let frame: Record<string, unknown>;
  try {
    frame = reader.readFields(fields, { type: type! });
  } catch (error) {
    if (error instanceof FrameDecodeError) return { ok: false, code: error.code, message: VERBOSE ? `${type}: ${error.message}` : '' };
    throw error; // a bug, not bad input
  }
  if (reader.pos !== bytes.length) return { ok: false, code: 'INVALID_FRAME', message: VERBOSE ? `${type}: ${bytes.length - reader.pos} trailing bytes` : '' };
  return { ok: true, value: frame as unknown as Frame };
}

/** A RecordsFrame decode failure. NB: module level, not a closure per decode (hot path). */
function fail(code: ErrorName, message: string): Decoded<RecordsFrame> {
  return { ok: false, code, message: VERBOSE ? `records: ${message}` : '' };
}

/** Hot path for the SDK: decodes a RecordsFrame with `batches` as a view into `bytes` (no copy). */
export function decodeRecordsFrame(bytes: Uint8Array, limits?: FrameLimits): Decoded<RecordsFrame> {
  const bad = checkFrameSize(bytes, limits);
  if (bad !== null) return bad;
  if (bytes[0] !== FrameKind.records) return fail('INVALID_FRAME', VERBOSE ? `frame kind ${bytes[0]} is not records` : '');
  if (bytes.length < 3) return fail('INVALID_FRAME', VERBOSE ? 'frame truncated in topic' : '');
  const topicBytes = readUint16(bytes, 1);
  const maxString = Math.min(limits?.maxStringBytes ?? MAX_U16, MAX_U16);
  if (topicBytes > maxString) return fail('MESSAGE_TOO_LARGE', VERBOSE ? `topic is ${topicBytes} bytes, limit ${maxString}` : '');
  const pos = 3 + topicBytes;
  if (bytes.length < pos + 16) return fail('INVALID_FRAME', VERBOSE ? 'frame truncated in header' : '');
  const topic = readUtf8(bytes, 3, pos);
  if (topic === null) return fail('INVALID_FRAME', VERBOSE ? 'topic is not valid UTF-8' : '');
  const highWatermark = readInt64(bytes, pos + 4);
  if (Number.isNaN(highWatermark)) return fail('INVALID_FRAME', VERBOSE ? 'highWatermark is outside ±(2^53-1)' : '');
  const length = readUint32(bytes, pos + 12);
  if (bytes.length - (pos + 16) !== length) return fail('INVALID_FRAME', VERBOSE ? `batches length ${length} does not match the ${bytes.length - pos - 16} bytes present` : '');
  return {
    ok: true,
    value: { type: 'records', topic, partition: readInt32(bytes, pos), highWatermark, batches: bytes.subarray(pos + 16) },
  };
}
