/**
 * Requests a cluster broker forwards to a partition's leader over the
 * internal protocol (docs/replication-protocol.md, "Forwarded requests"):
 * a client's produce, reads of a partition this broker holds no replica
 * of, and the leader's idempotent-producer state of one producer id (the
 * Durable Streams endpoint shapes its answers by it). Pure codec: bytes in, typed values or a RunnelError out.
 *
 * Layout (big-endian; str = u16 length + UTF-8; bytes = u32 length + bytes):
 * - produce:        str topicId | u32 partition | i8 acks | bytes batch
 * - produce answer: u8 1 | f64 baseOffset | f64 lastOffset | f64 logAppendTimeMs | u8 duplicate | f64 logStartOffset
 * - read:           str topicId | u32 partition | f64 offset | u32 maxBytes | u32 waitMs
 * - read answer:    u8 1 | f64 firstOffset | f64 nextOffset | f64 highWatermark | f64 logStartOffset | bytes batches
 * - timestamp:      str topicId | u32 partition | f64 timestampMs
 * - timestamp ans.: u8 1 | f64 offset (−1 = none)
 * - producer state: str topicId | u32 partition | f64 producerId
 * - producer ans.:  u8 1 | u8 known | (if known) i16 producerEpoch | u32 historyLength | u8 n
 *                   | n × (u32 baseSequence | u32 lastSequence | f64 baseOffset | f64 lastOffset)
 * - status:         (empty) → u8 etcdConnected, u32 ms since its last etcd answer
 * - any answer may instead be: u8 0 | i16 error code | str message
 * Offsets travel as f64: exact for every safe integer, which offsets are.
 */
import { ErrorCode, RunnelError, errorNameOf } from '@runnel/client/codec';
import { concatBytes } from '../bytes.ts';
import type { Acks, AppendResult, PartitionReadResult } from '../partition/partition.ts';
import { PRODUCER_BATCHES_RETAINED, type ProducerEntry } from '../log/producer-state.ts';

/** Request types on the internal protocol's extension range (the replication protocol's own types are below 100). */
export const ForwardType = { produce: 100, read: 101, offsetForTimestamp: 102, status: 103, producerState: 104 } as const;

/** `etcdContactAgeMs` when the broker never reached etcd (and the most an answer can say). */
const NEVER_CONTACTED = 0xffff_ffff;

/**
 * A broker's answer to `status` (no body asked; isolation.ts asks peers): u8 etcdConnected, then u32 ms since its
 * last etcd answer (0xffffffff: never). A broker of the version before sends the u8 alone: its age is null.
 */
export function encodeStatusAnswer(etcdConnected: boolean, etcdContactAgeMs: number | null): Uint8Array {
  const out = new Uint8Array(5);
  out[0] = etcdConnected ? 1 : 0;
  const age = etcdContactAgeMs === null ? NEVER_CONTACTED : Math.min(NEVER_CONTACTED, Math.max(0, Math.round(etcdContactAgeMs)));
  new DataView(out.buffer).setUint32(1, age);
  return out;
}

export function decodeStatusAnswer(buf: Uint8Array): { etcdConnected: boolean; etcdContactAgeMs: number | null } {
  if ((buf.length !== 1 && buf.length !== 5) || buf[0] > 1) throw new RunnelError('INVALID_REQUEST', `status answer: expected 1 or 5 bytes starting 0 or 1, got ${buf.length} bytes`);
  if (buf.length === 1) return { etcdConnected: buf[0] === 1, etcdContactAgeMs: null };
  const age = new DataView(buf.buffer, buf.byteOffset, buf.byteLength).getUint32(1);
  return { etcdConnected: buf[0] === 1, etcdContactAgeMs: age === NEVER_CONTACTED ? null : age };
}

export interface ProduceForward { topicId: string; partition: number; acks: Acks; batch: Uint8Array }
export interface ReadForward { topicId: string; partition: number; offset: number; maxBytes: number; waitMs: number }
export interface TimestampForward { topicId: string; partition: number; timestampMs: number }
export interface ProducerStateForward { topicId: string; partition: number; producerId: number }

const MAX_STRING_BYTES = 1024;
const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });

class Writer {
  private readonly parts: Uint8Array[] = [];
  private size = 0;
  private push(b: Uint8Array): this { this.parts.push(b); this.size += b.length; return this; }
  private fixed(n: number, f: (v: DataView) => void): this { const b = new Uint8Array(n); f(new DataView(b.buffer)); return this.push(b); }
  u8(v: number): this { return this.fixed(1, (d) => d.setUint8(0, v)); }
  i8(v: number): this { return this.fixed(1, (d) => d.setInt8(0, v)); }
  i16(v: number): this { return this.fixed(2, (d) => d.setInt16(0, v)); }
  u32(v: number): this { return this.fixed(4, (d) => d.setUint32(0, v)); }
  f64(v: number): this { return this.fixed(8, (d) => d.setFloat64(0, v)); }
  str(v: string): this { const b = encoder.encode(v); return this.fixed(2, (d) => d.setUint16(0, b.length)).push(b); }
  bytes(v: Uint8Array): this { return this.u32(v.length).push(v); }
  finish(): Uint8Array {
    return concatBytes(this.parts, this.size);
  }
}

class Reader {
  private at = 0;
  private readonly view: DataView;
  constructor(private readonly buf: Uint8Array, private readonly what: string) { this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength); }
  private need(n: number): number {
    if (this.at + n > this.buf.length) throw new RunnelError('INVALID_REQUEST', `${this.what}: truncated at byte ${this.at} (needs ${n} more of ${this.buf.length})`);
    const at = this.at;
    this.at += n;
    return at;
  }
  u8(): number { return this.view.getUint8(this.need(1)); }
  i8(): number { return this.view.getInt8(this.need(1)); }
  i16(): number { return this.view.getInt16(this.need(2)); }
  u32(): number { return this.view.getUint32(this.need(4)); }
  f64(): number { return this.view.getFloat64(this.need(8)); }
  offset(field: string): number {
    const v = this.f64();
    if (!Number.isSafeInteger(v) && v !== -1) throw new RunnelError('INVALID_REQUEST', `${this.what}: ${field} ${v} is not an offset`);
    return v;
  }
  str(): string {
    const n = this.view.getUint16(this.need(2));
    if (n > MAX_STRING_BYTES) throw new RunnelError('INVALID_REQUEST', `${this.what}: string of ${n} bytes (max ${MAX_STRING_BYTES})`);
    const at = this.need(n);
    try {
      return decoder.decode(this.buf.subarray(at, at + n));
    } catch {
      throw new RunnelError('INVALID_REQUEST', `${this.what}: string is not UTF-8`);
    }
  }
  /** A view into the frame (no copy): the caller owns the frame. */
  bytes(): Uint8Array { const n = this.u32(); const at = this.need(n); return this.buf.subarray(at, at + n); }
  end(): void { if (this.at !== this.buf.length) throw new RunnelError('INVALID_REQUEST', `${this.what}: ${this.buf.length - this.at} trailing bytes`); }
}

export function encodeProduceForward(r: ProduceForward): Uint8Array {
  return new Writer().str(r.topicId).u32(r.partition).i8(r.acks).bytes(r.batch).finish();
}

export function decodeProduceForward(buf: Uint8Array): ProduceForward {
  const r = new Reader(buf, 'forwarded produce');
  const out = { topicId: r.str(), partition: r.u32(), acks: r.i8(), batch: r.bytes() };
  r.end();
  if (out.acks !== -1 && out.acks !== 0 && out.acks !== 1) throw new RunnelError('INVALID_REQUEST', `forwarded produce: acks ${out.acks}`);
  return out as ProduceForward;
}

export function encodeReadForward(r: ReadForward): Uint8Array {
  return new Writer().str(r.topicId).u32(r.partition).f64(r.offset).u32(r.maxBytes).u32(r.waitMs).finish();
}

export function decodeReadForward(buf: Uint8Array): ReadForward {
  const r = new Reader(buf, 'forwarded read');
  const out = { topicId: r.str(), partition: r.u32(), offset: r.offset('offset'), maxBytes: r.u32(), waitMs: r.u32() };
  r.end();
  return out;
}

export function encodeTimestampForward(r: TimestampForward): Uint8Array {
  return new Writer().str(r.topicId).u32(r.partition).f64(r.timestampMs).finish();
}

export function decodeTimestampForward(buf: Uint8Array): TimestampForward {
  const r = new Reader(buf, 'forwarded offsetForTimestamp');
  const out = { topicId: r.str(), partition: r.u32(), timestampMs: r.f64() };
  r.end();
  return out;
}

export function encodeProducerStateForward(r: ProducerStateForward): Uint8Array {
  return new Writer().str(r.topicId).u32(r.partition).f64(r.producerId).finish();
}

export function decodeProducerStateForward(buf: Uint8Array): ProducerStateForward {
  const r = new Reader(buf, 'forwarded producerState');
  const out = { topicId: r.str(), partition: r.u32(), producerId: r.f64() };
  r.end();
  if (!Number.isSafeInteger(out.producerId) || out.producerId < 0) throw new RunnelError('INVALID_REQUEST', `forwarded producerState: producer id ${out.producerId}`);
  return out;
}

/** An error answer: the RunnelError's code and message travel, so the client sees what the leader said. */
export function encodeErrorAnswer(error: unknown): Uint8Array {
  const e = error instanceof RunnelError ? error : new RunnelError('UNKNOWN_SERVER_ERROR', (error as Error)?.message ?? String(error));
  return new Writer().u8(0).i16(ErrorCode[e.errorName]).str(e.message.slice(0, 500)).finish();
}

export function encodeProduceAnswer(r: AppendResult): Uint8Array {
  return new Writer().u8(1).f64(r.baseOffset).f64(r.lastOffset).f64(r.logAppendTimeMs).u8(r.duplicate ? 1 : 0).f64(r.logStartOffset).finish();
}

/** Throws the leader's RunnelError for an error answer. */
export function decodeProduceAnswer(buf: Uint8Array): AppendResult {
  const r = answerReader(buf, 'forwarded produce answer');
  const out = { baseOffset: r.offset('baseOffset'), lastOffset: r.offset('lastOffset'), logAppendTimeMs: r.f64(), duplicate: r.u8() === 1, logStartOffset: r.offset('logStartOffset') };
  r.end();
  return out;
}

export function encodeReadAnswer(r: PartitionReadResult): Uint8Array {
  return new Writer().u8(1).f64(r.firstOffset).f64(r.nextOffset).f64(r.highWatermark).f64(r.logStartOffset).bytes(r.batches).finish();
}

export function decodeReadAnswer(buf: Uint8Array): PartitionReadResult {
  const r = answerReader(buf, 'forwarded read answer');
  const out = { firstOffset: r.offset('firstOffset'), nextOffset: r.offset('nextOffset'), highWatermark: r.offset('highWatermark'), logStartOffset: r.offset('logStartOffset'), batches: r.bytes() };
  r.end();
  return out;
}

export function encodeTimestampAnswer(offset: number | null): Uint8Array {
  return new Writer().u8(1).f64(offset ?? -1).finish();
}

export function decodeTimestampAnswer(buf: Uint8Array): number | null {
  const r = answerReader(buf, 'forwarded offsetForTimestamp answer');
  const offset = r.offset('offset');
  r.end();
  return offset < 0 ? null : offset;
}

/** The leader's entry as it holds it (undefined: the producer is unknown there); `producerId` is the asker's. */
export function encodeProducerStateAnswer(entry: ProducerEntry | undefined): Uint8Array {
  const w = new Writer().u8(1).u8(entry === undefined ? 0 : 1);
  if (entry === undefined) return w.finish();
  w.i16(entry.producerEpoch).u32(entry.historyLength).u8(entry.batches.length);
  for (const b of entry.batches) w.u32(b.baseSequence).u32(b.lastSequence).f64(b.baseOffset).f64(b.lastOffset);
  return w.finish();
}

export function decodeProducerStateAnswer(buf: Uint8Array, producerId: number): ProducerEntry | undefined {
  const r = answerReader(buf, 'forwarded producerState answer');
  if (r.u8() === 0) {
    r.end();
    return undefined;
  }
  const producerEpoch = r.i16();
  const historyLength = r.u32();
  const n = r.u8();
  if (n > PRODUCER_BATCHES_RETAINED) throw new RunnelError('INVALID_REQUEST', `forwarded producerState answer: ${n} batches (a partition keeps ${PRODUCER_BATCHES_RETAINED})`);
  const batches = [];
  for (let i = 0; i < n; i++) batches.push({ baseSequence: r.u32(), lastSequence: r.u32(), baseOffset: r.offset('baseOffset'), lastOffset: r.offset('lastOffset') });
  r.end();
  return { producerId, producerEpoch, historyLength, batches };
}

function answerReader(buf: Uint8Array, what: string): Reader {
  const r = new Reader(buf, what);
  if (r.u8() === 1) return r;
  const code = r.i16();
  const message = r.str();
  throw new RunnelError(errorNameOf(code), message);
}
