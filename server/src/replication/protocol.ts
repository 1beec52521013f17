/**
 * The internal replication protocol between brokers (docs/replication-protocol.md,
 * the byte-by-byte reference): length-prefixed binary frames over TCP,
 *
 *   u32 length | u8 type | u32 correlationId | body      (big-endian; length = 5 + body)
 *
 * Requests carry types 0x01..0x7f, the answer to one carries its type | 0x80
 * (ERROR 0x80 answers any request). Types 0x10..0x7f are the extension range:
 * other modules register handlers for them (`ReplicationServer.handle`) and
 * define their bodies. Pure codec, no Node APIs: `FrameReader` cuts a byte
 * stream into frames, `decodeFrame` types one, `encodeFrame` writes one as
 * parts (a fetch answer's batches are their own part: the stored bytes, never
 * copied into a frame buffer; the socket writes the parts in one corked write).
 *
 * Invariant: decoders never throw on bad bytes; they return
 * `{ ok: false, code: 'INVALID_FRAME' | 'MESSAGE_TOO_LARGE' }`. Offsets travel
 * as f64 (exact for every safe integer) and are checked to be safe integers.
 */
import { ErrorCode, errorNameOf, type Decoded, type ErrorName } from '@runnel/client/codec';
import { concatBytes } from '../bytes.ts';

/** Version named in the handshake; a peer with another version is refused. */
export const REPLICATION_PROTOCOL_VERSION = 2;
/** Bytes of a handshake nonce and of a handshake proof (HMAC-SHA256), link-auth.ts. */
export const HANDSHAKE_NONCE_BYTES = 16;
export const HANDSHAKE_MAC_BYTES = 32;

export const FrameType = {
  handshake: 0x01,
  heartbeat: 0x02,
  fetch: 0x03,
  /** The dialer's proof of the link key, after HandshakeOk; answered only by ERROR (then closed) when wrong. */
  handshakeProof: 0x04,
  error: 0x80,
  handshakeOk: 0x81,
  heartbeatOk: 0x82,
  fetchResponse: 0x83,
} as const;

/** Set in the type of every answer: answer type = request type | RESPONSE_FLAG. */
export const RESPONSE_FLAG = 0x80;
/** Request types other modules may register (`ReplicationServer.handle`); their answers are type | 0x80. */
export const EXTENSION_TYPE_MIN = 0x10;
export const EXTENSION_TYPE_MAX = 0x7f;

/** Length prefix (4) + type (1) + correlationId (4). */
export const FRAME_HEADER_BYTES = 9;
/** Smallest value of the length prefix: type + correlationId. */
const MIN_FRAME_LENGTH = 5;
/** Largest topic id string (UTF-8 bytes). */
export const MAX_TOPIC_ID_BYTES = 255;
/** Largest error message carried (UTF-8 bytes); longer ones are cut. */
export const MAX_ERROR_MESSAGE_BYTES = 1024;
/** Kafka's UNDEFINED_EPOCH. */
export const NO_EPOCH = -1;

export interface FetchRequest {
  topicId: string;
  partition: number;
  /** The fetching follower's broker id. */
  replicaId: number;
  /** The leader epoch the follower believes current: fencing (above the leader's: UNKNOWN_LEADER_EPOCH, below: FENCED_LEADER_EPOCH). */
  currentLeaderEpoch: number;
  /** Epoch of the last batch in the follower's log (NO_EPOCH when none): the leader checks it against its history (divergence). */
  lastFetchedEpoch: number;
  /** The follower's DURABLE log end: where to read from, and its position for the high watermark. */
  fetchOffset: number;
  /** The high watermark the follower last learned: a held fetch is answered once the leader's passes it. */
  knownHighWatermark: number;
  /** Batch bytes wanted (at least one whole batch is sent). */
  maxBytes: number;
  /** How long the leader may hold the fetch while it has nothing new. */
  maxWaitMs: number;
}

export interface DivergingEpoch {
  /** Largest epoch of the leader's history <= the follower's lastFetchedEpoch (NO_EPOCH: unknown). */
  epoch: number;
  /** Where that epoch ends in the leader's log: the follower truncates to it (or below, KIP-279). */
  endOffset: number;
}

export interface FetchResponse {
  leaderEpoch: number;
  highWatermark: number;
  logStartOffset: number;
  logEndOffset: number;
  /** Set when the follower's log diverges from the leader's (KIP-320): `records` is then empty. */
  divergingEpoch: DivergingEpoch | null;
  /** Whole stored batches from the one holding fetchOffset, verbatim. */
  records: Uint8Array;
}

export type ReplicationFrame =
  | { kind: 'handshake'; correlationId: number; version: number; brokerId: number; nonce: Uint8Array }
  | { kind: 'handshakeOk'; correlationId: number; version: number; brokerId: number; nonce: Uint8Array; mac: Uint8Array }
  | { kind: 'handshakeProof'; correlationId: number; mac: Uint8Array }
  | { kind: 'heartbeat'; correlationId: number; brokerId: number; sentAtMs: number }
  | { kind: 'heartbeatOk'; correlationId: number; brokerId: number; sentAtMs: number }
  | { kind: 'fetch'; correlationId: number; request: FetchRequest }
  | { kind: 'fetchResponse'; correlationId: number; response: FetchResponse }
  | { kind: 'error'; correlationId: number; code: ErrorName; message: string }
  /** A request of a registered type; `body` is that module's. */
  | { kind: 'extension'; correlationId: number; requestType: number; body: Uint8Array }
  | { kind: 'extensionResponse'; correlationId: number; requestType: number; body: Uint8Array };

/** One frame cut from the stream, not yet typed. `body` is a view into the received bytes (no copy). */
export interface RawFrame {
  type: number;
  correlationId: number;
  body: Uint8Array;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });

function invalid<T>(message: string): Decoded<T> {
  return { ok: false, code: 'INVALID_FRAME', message };
}

/**
 * Cuts a TCP byte stream into frames. A frame inside one received chunk is a
 * view of it; one spread over chunks is copied once into its own buffer.
 * After an error the stream is unusable (close the connection).
 */
export class FrameReader {
  readonly #maxFrameBytes: number;
  #chunks: Uint8Array[] = [];
  /** Bytes of #chunks[0] already consumed. */
  #head = 0;
  #buffered = 0;
  #failed: Decoded<RawFrame> | null = null;

  /** `maxFrameBytes`: largest length prefix accepted. */
  constructor(maxFrameBytes: number) {
    this.#maxFrameBytes = maxFrameBytes;
  }

  /** Bytes received and not yet returned as frames. */
  get bufferedBytes(): number {
    return this.#buffered;
  }

  push(chunk: Uint8Array): void {
    if (chunk.length === 0 || this.#failed) return;
    this.#chunks.push(chunk);
    this.#buffered += chunk.length;
  }

  /** The next whole frame; null until more bytes arrive; an error when the stream is bad (every later call returns it too). */
  next(): Decoded<RawFrame> | null {
    if (this.#failed) return this.#failed;
    if (this.#buffered < 4) return null;
    const length = this.#peekUint32();
    if (length < MIN_FRAME_LENGTH) return this.#fail(invalid(`frame length ${length} is below ${MIN_FRAME_LENGTH} (type and correlationId)`));
    if (length > this.#maxFrameBytes) return this.#fail({ ok: false, code: 'MESSAGE_TOO_LARGE', message: `frame of ${length} bytes exceeds maxFrameBytes ${this.#maxFrameBytes}` });
    if (this.#buffered < 4 + length) return null;
    const bytes = this.#take(4 + length);
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    return { ok: true, value: { type: bytes[4], correlationId: view.getUint32(5), body: bytes.subarray(FRAME_HEADER_BYTES) } };
  }

  #fail(error: Decoded<RawFrame>): Decoded<RawFrame> {
    this.#failed = error;
    this.#chunks = [];
    this.#buffered = 0;
    return error;
  }

  #peekUint32(): number {
    let value = 0;
    let chunk = 0;
    let at = this.#head;
    for (let i = 0; i < 4; i++) {
      while (at >= this.#chunks[chunk].length) {
        chunk++;
        at = 0;
      }
      value = value * 256 + this.#chunks[chunk][at++];
    }
    return value;
  }

  /** Removes the next `n` bytes (n <= buffered): a view when they lie in one chunk, else one copy. */
  #take(n: number): Uint8Array {
    this.#buffered -= n;
    const first = this.#chunks[0];
    if (first.length - this.#head >= n) {
      const out = first.subarray(this.#head, this.#head + n);
      this.#head += n;
      if (this.#head === first.length) this.#dropFirst();
      return out;
    }
    // NB: not zero-filled (every byte is copied in below): a fetch answer spans many socket chunks, so this
    // runs per answer on its whole size. test/bench/replication.bench.ts, 4 interleaved runs: 10.4-12.9 →
    // 9.6-10.3 CPU-ms per MB, mark-compact GCs per MB 0.20-0.25 → 0.15-0.19. A plain Uint8Array over it, so
    // `slice()` still copies (Buffer#slice is a view).
    const unsafe = Buffer.allocUnsafe(n);
    const out = new Uint8Array(unsafe.buffer, unsafe.byteOffset, n);
    let filled = 0;
    while (filled < n) {
      const c = this.#chunks[0];
      const take = Math.min(c.length - this.#head, n - filled);
      out.set(c.subarray(this.#head, this.#head + take), filled);
      filled += take;
      this.#head += take;
      if (this.#head === c.length) this.#dropFirst();
    }
    return out;
  }

  #dropFirst(): void {
    this.#chunks.shift();
    this.#head = 0;
  }
}

/** Bounds-checked reads over one frame body; every read says whether it fit. */
class BodyReader {
  at = 0;
  readonly #view: DataView;
  error: string | null = null;

  constructor(readonly body: Uint8Array) {
    this.#view = new DataView(body.buffer, body.byteOffset, body.byteLength);
  }

  #need(n: number, field: string): number {
    if (this.error !== null) return -1;
    if (this.at + n > this.body.length) {
      this.error = `truncated at ${field} (byte ${this.at}, needs ${n}, body has ${this.body.length})`;
      return -1;
    }
    const at = this.at;
    this.at += n;
    return at;
  }

  u16(field: string): number { const at = this.#need(2, field); return at < 0 ? 0 : this.#view.getUint16(at); }
  i16(field: string): number { const at = this.#need(2, field); return at < 0 ? 0 : this.#view.getInt16(at); }
  i32(field: string): number { const at = this.#need(4, field); return at < 0 ? 0 : this.#view.getInt32(at); }
  u32(field: string): number { const at = this.#need(4, field); return at < 0 ? 0 : this.#view.getUint32(at); }
  u8(field: string): number { const at = this.#need(1, field); return at < 0 ? 0 : this.body[at]; }
  f64(field: string): number { const at = this.#need(8, field); return at < 0 ? 0 : this.#view.getFloat64(at); }

  /** A safe integer >= `min` stored as f64. */
  offset(field: string, min = 0): number {
    const v = this.f64(field);
    if (this.error === null && !(Number.isSafeInteger(v) && v >= min)) this.error = `${field} ${v} is not an integer >= ${min}`;
    return v;
  }

  /** An int32 >= `min` (epochs, broker ids, partitions). */
  int(field: string, min: number): number {
    const v = this.i32(field);
    if (this.error === null && v < min) this.error = `${field} ${v} is below ${min}`;
    return v;
  }

  str(field: string, maxBytes: number): string {
    const n = this.u16(field);
    if (this.error === null && n > maxBytes) {
      this.error = `${field} of ${n} bytes exceeds ${maxBytes}`;
      return '';
    }
    const at = this.#need(n, field);
    if (at < 0) return '';
    try {
      return decoder.decode(this.body.subarray(at, at + n));
    } catch {
      this.error = `${field} is not UTF-8`;
      return '';
    }
  }

  /** Exactly `n` bytes, a view into the body (no copy). */
  fixed(field: string, n: number): Uint8Array {
    const at = this.#need(n, field);
    return at < 0 ? new Uint8Array(0) : this.body.subarray(at, at + n);
  }

  /** A u32-length-prefixed view into the body (no copy). */
  bytes(field: string): Uint8Array {
    const n = this.u32(field);
    const at = this.#need(n, field);
    return at < 0 ? new Uint8Array(0) : this.body.subarray(at, at + n);
  }

  /** The decoded value, or the first problem (trailing bytes included). */
  finish<T>(value: T, what: string): Decoded<T> {
    if (this.error === null && this.at !== this.body.length) this.error = `${this.body.length - this.at} trailing bytes`;
    return this.error === null ? { ok: true, value } : invalid(`${what}: ${this.error}`);
  }
}

/** Types one raw frame. Never throws. */
export function decodeFrame(raw: RawFrame): Decoded<ReplicationFrame> {
  const r = new BodyReader(raw.body);
  const correlationId = raw.correlationId;
  switch (raw.type) {
    case FrameType.handshake: {
      const version = r.u16('version');
      const brokerId = r.int('brokerId', 0);
      // NB: another version's body may differ past the version: kept as it is (nonce) and answered UNSUPPORTED_VERSION, not INVALID_FRAME.
      if (r.error === null && version !== REPLICATION_PROTOCOL_VERSION) return { ok: true, value: { kind: 'handshake', correlationId, version, brokerId, nonce: raw.body.subarray(r.at) } };
      const nonce = r.fixed('nonce', HANDSHAKE_NONCE_BYTES);
      return r.finish({ kind: 'handshake', correlationId, version, brokerId, nonce }, 'handshake');
    }
    case FrameType.handshakeOk: {
      const version = r.u16('version');
      const brokerId = r.int('brokerId', 0);
      const nonce = r.fixed('nonce', HANDSHAKE_NONCE_BYTES);
      const mac = r.fixed('mac', HANDSHAKE_MAC_BYTES);
      return r.finish({ kind: 'handshakeOk', correlationId, version, brokerId, nonce, mac }, 'handshakeOk');
    }
    case FrameType.handshakeProof: {
      const mac = r.fixed('mac', HANDSHAKE_MAC_BYTES);
      return r.finish({ kind: 'handshakeProof', correlationId, mac }, 'handshakeProof');
    }
    case FrameType.heartbeat:
    case FrameType.heartbeatOk: {
      const brokerId = r.int('brokerId', 0);
      const sentAtMs = r.f64('sentAtMs');
      if (r.error === null && !Number.isFinite(sentAtMs)) r.error = `sentAtMs ${sentAtMs} is not finite`;
      const kind = raw.type === FrameType.heartbeat ? 'heartbeat' : 'heartbeatOk';
      return r.finish({ kind, correlationId, brokerId, sentAtMs }, kind);
    }
    case FrameType.fetch:
      return r.finish({ kind: 'fetch', correlationId, request: readFetchRequest(r) }, 'fetch');
    case FrameType.fetchResponse:
      return r.finish({ kind: 'fetchResponse', correlationId, response: readFetchResponse(r) }, 'fetchResponse');
    case FrameType.error: {
      const code = r.i16('code');
      const message = r.str('message', MAX_ERROR_MESSAGE_BYTES);
      return r.finish({ kind: 'error', correlationId, code: errorNameOf(code), message }, 'error');
    }
    default: {
      const requestType = raw.type & ~RESPONSE_FLAG;
      if (requestType < EXTENSION_TYPE_MIN || requestType > EXTENSION_TYPE_MAX) return invalid(`unknown frame type 0x${raw.type.toString(16)}`);
      const kind = raw.type & RESPONSE_FLAG ? 'extensionResponse' : 'extension';
      return { ok: true, value: { kind, correlationId, requestType, body: raw.body } };
    }
  }
}

function readFetchRequest(r: BodyReader): FetchRequest {
  return {
    topicId: r.str('topicId', MAX_TOPIC_ID_BYTES),
    partition: r.int('partition', 0),
    replicaId: r.int('replicaId', 0),
    currentLeaderEpoch: r.int('currentLeaderEpoch', 0),
    lastFetchedEpoch: r.int('lastFetchedEpoch', NO_EPOCH),
    fetchOffset: r.offset('fetchOffset'),
    knownHighWatermark: r.offset('knownHighWatermark'),
    maxBytes: r.u32('maxBytes'),
    maxWaitMs: r.u32('maxWaitMs'),
  };
}

/** Fetch answer flags: bit 0 = divergingEpoch present. */
const DIVERGING_FLAG = 0x01;

function readFetchResponse(r: BodyReader): FetchResponse {
  const leaderEpoch = r.int('leaderEpoch', 0);
  const highWatermark = r.offset('highWatermark');
  const logStartOffset = r.offset('logStartOffset');
  const logEndOffset = r.offset('logEndOffset');
  const flags = r.u8('flags');
  const epoch = r.int('divergingEpoch.epoch', NO_EPOCH);
  const endOffset = r.offset('divergingEpoch.endOffset', -1);
  const records = r.bytes('records');
  if (r.error === null && (flags & ~DIVERGING_FLAG) !== 0) r.error = `unknown fetch answer flags 0x${flags.toString(16)}`;
  if (r.error === null && !(logStartOffset <= highWatermark && highWatermark <= logEndOffset)) {
    r.error = `offsets out of order: logStartOffset ${logStartOffset}, highWatermark ${highWatermark}, logEndOffset ${logEndOffset}`;
  }
  const isDiverging = (flags & DIVERGING_FLAG) !== 0;
  if (r.error === null && isDiverging && records.length > 0) r.error = 'a diverging answer carries no records';
  if (r.error === null && !isDiverging && (epoch !== NO_EPOCH || endOffset !== -1)) r.error = 'divergingEpoch fields without the flag must be -1, -1';
  return { leaderEpoch, highWatermark, logStartOffset, logEndOffset, divergingEpoch: isDiverging ? { epoch, endOffset } : null, records };
}

/** Writes fields into one preallocated buffer. */
class BodyWriter {
  readonly bytes: Uint8Array;
  readonly #view: DataView;
  #at: number;

  /** A whole frame of `bodyBytes` (plus `trailingBytes` sent as separate parts): writes the header. */
  constructor(type: number, correlationId: number, bodyBytes: number, trailingBytes = 0) {
    this.bytes = new Uint8Array(FRAME_HEADER_BYTES + bodyBytes);
    this.#view = new DataView(this.bytes.buffer);
    this.#view.setUint32(0, MIN_FRAME_LENGTH + bodyBytes + trailingBytes);
    this.bytes[4] = type;
    this.#view.setUint32(5, correlationId >>> 0);
    this.#at = FRAME_HEADER_BYTES;
  }

  u8(v: number): this { this.bytes[this.#at] = v; this.#at += 1; return this; }
  u16(v: number): this { this.#view.setUint16(this.#at, v); this.#at += 2; return this; }
  i16(v: number): this { this.#view.setInt16(this.#at, v); this.#at += 2; return this; }
  i32(v: number): this { this.#view.setInt32(this.#at, v); this.#at += 4; return this; }
  u32(v: number): this { this.#view.setUint32(this.#at, v); this.#at += 4; return this; }
  f64(v: number): this { this.#view.setFloat64(this.#at, v); this.#at += 8; return this; }
  raw(b: Uint8Array): this { this.bytes.set(b, this.#at); this.#at += b.length; return this; }
}

/** UTF-8 of `s`, cut (at a character boundary) to `maxBytes`. */
function utf8Bounded(s: string, maxBytes: number): Uint8Array {
  let b = encoder.encode(s);
  if (b.length <= maxBytes) return b;
  let cut = maxBytes;
  while (cut > 0 && (b[cut] & 0xc0) === 0x80) cut--;
  b = b.subarray(0, cut);
  return b;
}

function fixedLength(field: string, bytes: Uint8Array, n: number): void {
  if (bytes.length !== n) throw new RangeError(`${field} of ${bytes.length} bytes; must be ${n}`);
}

/**
 * Encodes a frame as the parts to write in order, in ONE corked socket write:
 * the header and fixed fields, then (fetch answers, extensions) the payload
 * bytes themselves, not copied. Programmer errors (a topic id too long, an
 * extension type outside the range) throw; values are assumed validated.
 */
export function encodeFrame(frame: ReplicationFrame): Uint8Array[] {
  switch (frame.kind) {
    case 'handshake':
      if (frame.version === REPLICATION_PROTOCOL_VERSION) fixedLength('nonce', frame.nonce, HANDSHAKE_NONCE_BYTES);
      return [new BodyWriter(FrameType.handshake, frame.correlationId, 6 + frame.nonce.length).u16(frame.version).i32(frame.brokerId).raw(frame.nonce).bytes];
    case 'handshakeOk':
      fixedLength('nonce', frame.nonce, HANDSHAKE_NONCE_BYTES);
      fixedLength('mac', frame.mac, HANDSHAKE_MAC_BYTES);
      return [new BodyWriter(FrameType.handshakeOk, frame.correlationId, 6 + HANDSHAKE_NONCE_BYTES + HANDSHAKE_MAC_BYTES).u16(frame.version).i32(frame.brokerId).raw(frame.nonce).raw(frame.mac).bytes];
    case 'handshakeProof':
      fixedLength('mac', frame.mac, HANDSHAKE_MAC_BYTES);
      return [new BodyWriter(FrameType.handshakeProof, frame.correlationId, HANDSHAKE_MAC_BYTES).raw(frame.mac).bytes];
    case 'heartbeat':
    case 'heartbeatOk':
      return [new BodyWriter(FrameType[frame.kind], frame.correlationId, 12).i32(frame.brokerId).f64(frame.sentAtMs).bytes];
    case 'fetch': {
      const q = frame.request;
      const topicId = encoder.encode(q.topicId);
      if (topicId.length > MAX_TOPIC_ID_BYTES) throw new RangeError(`topicId of ${topicId.length} bytes exceeds ${MAX_TOPIC_ID_BYTES}`);
      const w = new BodyWriter(FrameType.fetch, frame.correlationId, 2 + topicId.length + 16 + 16 + 8);
      w.u16(topicId.length).raw(topicId).i32(q.partition).i32(q.replicaId).i32(q.currentLeaderEpoch).i32(q.lastFetchedEpoch);
      return [w.f64(q.fetchOffset).f64(q.knownHighWatermark).u32(q.maxBytes).u32(q.maxWaitMs).bytes];
    }
    case 'fetchResponse': {
      const a = frame.response;
      const records = a.records;
      const w = new BodyWriter(FrameType.fetchResponse, frame.correlationId, FETCH_RESPONSE_FIXED_BYTES, records.length);
      w.i32(a.leaderEpoch).f64(a.highWatermark).f64(a.logStartOffset).f64(a.logEndOffset);
      w.u8(a.divergingEpoch ? DIVERGING_FLAG : 0).i32(a.divergingEpoch?.epoch ?? NO_EPOCH).f64(a.divergingEpoch?.endOffset ?? -1).u32(records.length);
      return records.length > 0 ? [w.bytes, records] : [w.bytes];
    }
    case 'error': {
      const message = utf8Bounded(frame.message, MAX_ERROR_MESSAGE_BYTES);
      return [new BodyWriter(FrameType.error, frame.correlationId, 4 + message.length).i16(ErrorCode[frame.code]).u16(message.length).raw(message).bytes];
    }
    case 'extension':
    case 'extensionResponse': {
      if (!(frame.requestType >= EXTENSION_TYPE_MIN && frame.requestType <= EXTENSION_TYPE_MAX)) throw new RangeError(`extension type ${frame.requestType} outside ${EXTENSION_TYPE_MIN}..${EXTENSION_TYPE_MAX}`);
      const type = frame.kind === 'extension' ? frame.requestType : frame.requestType | RESPONSE_FLAG;
      const header = new BodyWriter(type, frame.correlationId, 0, frame.body.length).bytes;
      return frame.body.length > 0 ? [header, frame.body] : [header];
    }
  }
}

/** Fixed fields of a fetch answer before its batches: epoch, 3 offsets, flags, diverging epoch and end, records length. */
export const FETCH_RESPONSE_FIXED_BYTES = 4 + 24 + 1 + 4 + 8 + 4;

/** The parts of `encodeFrame` as one buffer (tests, small frames). */
export const concatParts = (parts: Uint8Array[]): Uint8Array => concatBytes(parts);
