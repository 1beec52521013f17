/**
 * Binary encoder/decoder for every protocol v1 frame: `[u8 kind][fields]`,
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
import { assert, assertNever, type Decoded, type ErrorName } from './error-codes.ts';
import { FrameSchema, StartPositionTag, type FieldType, type Fields } from './frame-schema.ts';
import { FrameKind, type Frame, type FrameType, type RecordsFrame, type StartPosition } from './protocol.ts';
import { readUtf8, utf8Length, writeUtf8 } from './utf8.ts';

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

/** Encoded size of `value` as `type`; asserts that the value fits its wire type. */
function sizeOf(value: unknown, type: FieldType, name: string): number {
  if (typeof type === 'object') {
    if ('array' in type) {
      assert(Array.isArray(value), `${name} must be an array`);
      let size = 4;
      for (const element of value) size += sizeOf(element, type.array, name);
      return size;
    }
    return sizeOfFields(value as Record<string, unknown>, type.struct);
  }
  switch (type) {
    case 'i8': case 'acks': return assertInt(value, -128, 127, name), 1;
    case 'i16': return assertInt(value, -32768, 32767, name), 2;
    case 'u16': return assertInt(value, 0, MAX_U16, name), 2;
    case 'i32': return assertInt(value, -(2 ** 31), 2 ** 31 - 1, name), 4;
    case 'u32': return assertInt(value, 0, 2 ** 32 - 1, name), 4;
    case 'i64': return assertInt(value, Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER, name), 8;
    case 'string': {
      assert(typeof value === 'string', `${name} must be a string`);
      const length = utf8Length(value);
      assert(length <= MAX_U16, `${name} is ${length} UTF-8 bytes; strings are limited to 65535`);
      return 2 + length;
    }
    case 'bytes': return assert(value instanceof Uint8Array, `${name} must be a Uint8Array`), 4 + value.length;
    case 'startPosition': {
      assert(typeof value === 'object' && value !== null, `${name} must be a StartPosition object`);
      const kind = (value as StartPosition).kind;
      assert(kind in StartPositionTag, `${name}.kind must be earliest|latest|offset|timestamp`);
      if (kind === 'offset') assertInt((value as { offset: number }).offset, 0, Number.MAX_SAFE_INTEGER, `${name}.offset`);
      if (kind === 'timestamp') assertInt((value as { timestampMs: number }).timestampMs, Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER, `${name}.timestampMs`);
      return kind === 'offset' || kind === 'timestamp' ? 9 : 1;
    }
    default: return assertNever(type, 'wire type');
  }
}

function assertInt(value: unknown, min: number, max: number, name: string): void {
  assert(Number.isInteger(value) && (value as number) >= min && (value as number) <= max, `${name} must be an integer in [${min}, ${max}], got ${String(value)}`);
}

function sizeOfFields(value: Record<string, unknown>, fields: Fields): number {
  assert(typeof value === 'object' && value !== null, 'frame field must be an object');
  let size = 0;
  for (const [name, type] of fields) size += sizeOf(value[name], type, name);
  return size;
}

function write(out: Uint8Array, pos: number, value: unknown, type: FieldType): number {
  if (typeof type === 'object') {
    if ('array' in type) {
      const array = value as unknown[];
      writeInt32(out, pos, array.length);
      pos += 4;
      for (const element of array) pos = write(out, pos, element, type.array);
      return pos;
    }
    return writeFields(out, pos, value as Record<string, unknown>, type.struct);
  }
  switch (type) {
    case 'i8': case 'acks': out[pos] = value as number; return pos + 1;
    case 'i16': case 'u16': writeInt16(out, pos, value as number); return pos + 2;
    case 'i32': case 'u32': writeInt32(out, pos, value as number); return pos + 4;
    case 'i64': writeInt64(out, pos, value as number); return pos + 8;
    case 'string': {
      const end = writeUtf8(out, pos + 2, value as string);
      writeInt16(out, pos, end - pos - 2);
      return end;
    }
    case 'bytes': {
      const b = value as Uint8Array;
      writeInt32(out, pos, b.length);
      out.set(b, pos + 4);
      return pos + 4 + b.length;
    }
    case 'startPosition': return writeStartPosition(out, pos, value as StartPosition);
    default: return assertNever(type, 'wire type');
  }
}

function writeStartPosition(out: Uint8Array, pos: number, from: StartPosition): number {
  out[pos] = StartPositionTag[from.kind];
  switch (from.kind) {
    case 'earliest': case 'latest': return pos + 1;
    case 'offset': writeInt64(out, pos + 1, from.offset); return pos + 9;
    case 'timestamp': writeInt64(out, pos + 1, from.timestampMs); return pos + 9;
    default: return assertNever(from, 'start position');
  }
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
  const fields: Fields = FrameSchema[frame.type];
  assert(fields !== undefined, `unknown frame type ${String(frame.type)}`);
  const value = frame as unknown as Record<string, unknown>;
  const out = new Uint8Array(1 + sizeOfFields(value, fields));
  out[0] = FrameKind[frame.type];
  const end = writeFields(out, 1, value, fields);
  assert(end === out.length, `frame ${frame.type}: wrote ${end} bytes, sized ${out.length}`);
  return out;
}

/**
 * Hot path for the broker: a RecordsFrame around stored batch bytes, copied
 * once. Same bytes as `encodeFrame({ type: 'records', ... })`.
 */
export function encodeRecordsFrame(topic: string, partition: number, highWatermark: number, batches: Uint8Array): Uint8Array {
  const topicBytes = utf8Length(topic);
  assert(topicBytes <= MAX_U16, 'topic name longer than 65535 UTF-8 bytes');
  assert((partition | 0) === partition && Number.isSafeInteger(highWatermark), 'partition must be an int32 and highWatermark a safe integer');
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
  switch (type) {
    case 'i8': case 'acks': case 'startPosition': return 1;
    case 'i16': case 'u16': case 'string': return 2;
    case 'i32': case 'u32': case 'bytes': return 4;
    case 'i64': return 8;
    default: return assertNever(type, 'wire type');
  }
}

class FrameReader {
  pos = 1;
  constructor(
    private readonly b: Uint8Array,
    private readonly maxStringBytes: number,
    private readonly maxArrayLength: number,
  ) {}

  private need(n: number, name: string): void {
    if (this.b.length - this.pos < n) throw new FrameDecodeError('INVALID_FRAME', `frame truncated in ${name}`);
  }

  readFields(fields: Fields, into: Record<string, unknown>): Record<string, unknown> {
    for (const [name, type] of fields) into[name] = this.read(type, name);
    return into;
  }

  read(type: FieldType, name: string): unknown {
    if (typeof type === 'object') return 'array' in type ? this.readArray(type.array, name) : this.readFields(type.struct, {});
    const b = this.b;
    const at = this.pos;
    switch (type) {
      case 'i8': this.need(1, name); this.pos += 1; return (b[at] << 24) >> 24;
      case 'acks': {
        this.need(1, name);
        const acks = (b[at] << 24) >> 24;
        if (acks < -1 || acks > 1) throw new FrameDecodeError('INVALID_FRAME', `${name} must be -1, 0 or 1, got ${acks}`);
        this.pos += 1;
        return acks;
      }
      case 'i16': this.need(2, name); this.pos += 2; return readInt16(b, at);
      case 'u16': this.need(2, name); this.pos += 2; return readUint16(b, at);
      case 'i32': this.need(4, name); this.pos += 4; return readInt32(b, at);
      case 'u32': this.need(4, name); this.pos += 4; return readUint32(b, at);
      case 'i64': return this.readInt64(name);
      case 'string': return this.readString(name);
      case 'bytes': {
        this.need(4, name);
        const length = readUint32(b, at);
        this.pos += 4;
        this.need(length, name);
        this.pos += length;
        return b.subarray(at + 4, at + 4 + length);
      }
      case 'startPosition': return this.readStartPosition(name);
      default: return assertNever(type, 'wire type');
    }
  }

  private readInt64(name: string): number {
    this.need(8, name);
    const value = readInt64(this.b, this.pos);
    if (Number.isNaN(value)) throw new FrameDecodeError('INVALID_FRAME', `${name} is outside ±(2^53-1)`);
    this.pos += 8;
    return value;
  }

  private readString(name: string): string {
    this.need(2, name);
    const length = readUint16(this.b, this.pos);
    if (length > this.maxStringBytes) throw new FrameDecodeError('MESSAGE_TOO_LARGE', `${name} is ${length} bytes, limit ${this.maxStringBytes}`);
    this.pos += 2;
    this.need(length, name);
    const s = readUtf8(this.b, this.pos, this.pos + length);
    if (s === null) throw new FrameDecodeError('INVALID_FRAME', `${name} is not valid UTF-8`);
    this.pos += length;
    return s;
  }

  private readArray(type: FieldType, name: string): unknown[] {
    this.need(4, name);
    const count = readUint32(this.b, this.pos);
    this.pos += 4;
    if (count > this.maxArrayLength) throw new FrameDecodeError('MESSAGE_TOO_LARGE', `${name} has ${count} elements, limit ${this.maxArrayLength}`);
    // NB: checked before allocating, so a forged count cannot make us build a huge array.
    if (count * minSize(type) > this.b.length - this.pos) throw new FrameDecodeError('INVALID_FRAME', `${name} count ${count} cannot fit the frame`);
    const out = new Array<unknown>(count);
    for (let i = 0; i < count; i++) out[i] = this.read(type, name);
    return out;
  }

  private readStartPosition(name: string): StartPosition {
    this.need(1, name);
    const tag = this.b[this.pos++];
    switch (tag) {
      case StartPositionTag.earliest: return { kind: 'earliest' };
      case StartPositionTag.latest: return { kind: 'latest' };
      case StartPositionTag.offset: {
        const offset = this.readInt64(`${name}.offset`);
        if (offset < 0) throw new FrameDecodeError('INVALID_FRAME', `${name}.offset is negative`);
        return { kind: 'offset', offset };
      }
      case StartPositionTag.timestamp: return { kind: 'timestamp', timestampMs: this.readInt64(`${name}.timestampMs`) };
      default: throw new FrameDecodeError('INVALID_FRAME', `${name} has unknown tag ${tag}`);
    }
  }
}

function checkFrameSize(bytes: Uint8Array, limits: FrameLimits | undefined): Decoded<never> | null {
  if (bytes.length === 0) return { ok: false, code: 'INVALID_FRAME', message: 'empty frame' };
  const max = limits?.maxFrameBytes;
  if (max !== undefined && bytes.length > max) return { ok: false, code: 'MESSAGE_TOO_LARGE', message: `frame of ${bytes.length} bytes exceeds maxFrameBytes ${max}` };
  return null;
}

/**
 * Decodes one frame. Never throws on bad bytes.
 * @example decodeFrame(encodeFrame({ type: 'ping', nonce: 7 })) // { ok: true, value: { type: 'ping', nonce: 7 } }
 */
export function decodeFrame(bytes: Uint8Array, limits?: FrameLimits): Decoded<Frame> {
  const bad = checkFrameSize(bytes, limits);
  if (bad !== null) return bad;
  const type = typeByKind[bytes[0]];
  if (type === undefined) return { ok: false, code: 'INVALID_FRAME', message: `unknown frame kind ${bytes[0]}` };
  if (type === 'records') return decodeRecordsFrame(bytes, limits);
  const reader = new FrameReader(bytes, Math.min(limits?.maxStringBytes ?? MAX_U16, MAX_U16), limits?.maxArrayLength ?? DEFAULT_MAX_ARRAY_LENGTH);
  let frame: Record<string, unknown>;
  try {
    frame = reader.readFields(FrameSchema[type], { type });
  } catch (error) {
    if (error instanceof FrameDecodeError) return { ok: false, code: error.code, message: `${type}: ${error.message}` };
    throw error; // a bug, not bad input
  }
  if (reader.pos !== bytes.length) return { ok: false, code: 'INVALID_FRAME', message: `${type}: ${bytes.length - reader.pos} trailing bytes` };
  return { ok: true, value: frame as unknown as Frame };
}

/** Hot path for the SDK: decodes a RecordsFrame with `batches` as a view into `bytes` (no copy). */
export function decodeRecordsFrame(bytes: Uint8Array, limits?: FrameLimits): Decoded<RecordsFrame> {
  const bad = checkFrameSize(bytes, limits);
  if (bad !== null) return bad;
  const fail = (code: ErrorName, message: string): Decoded<RecordsFrame> => ({ ok: false, code, message: `records: ${message}` });
  if (bytes[0] !== FrameKind.records) return fail('INVALID_FRAME', `frame kind ${bytes[0]} is not records`);
  if (bytes.length < 3) return fail('INVALID_FRAME', 'frame truncated in topic');
  const topicBytes = readUint16(bytes, 1);
  const maxString = Math.min(limits?.maxStringBytes ?? MAX_U16, MAX_U16);
  if (topicBytes > maxString) return fail('MESSAGE_TOO_LARGE', `topic is ${topicBytes} bytes, limit ${maxString}`);
  const pos = 3 + topicBytes;
  if (bytes.length < pos + 16) return fail('INVALID_FRAME', 'frame truncated in header');
  const topic = readUtf8(bytes, 3, pos);
  if (topic === null) return fail('INVALID_FRAME', 'topic is not valid UTF-8');
  const highWatermark = readInt64(bytes, pos + 4);
  if (Number.isNaN(highWatermark)) return fail('INVALID_FRAME', 'highWatermark is outside ±(2^53-1)');
  const length = readUint32(bytes, pos + 12);
  if (bytes.length - (pos + 16) !== length) return fail('INVALID_FRAME', `batches length ${length} does not match the ${bytes.length - pos - 16} bytes present`);
  return {
    ok: true,
    value: { type: 'records', topic, partition: readInt32(bytes, pos), highWatermark, batches: bytes.subarray(pos + 16) },
  };
}
