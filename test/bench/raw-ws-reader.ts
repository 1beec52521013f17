/**
 * A minimal RFC 6455 client for the fan-out benchmark's subscriber
 * processes: it counts the records of RecordsFrames straight from the TCP
 * stream, reading only frame headers and RecordBatch headers and never
 * copying a payload. With the `ws` package the four subscriber processes
 * spent ~2/3 of the machine's two cores concatenating and emitting 110 KB
 * messages, leaving the broker (the thing measured) about a quarter of one.
 *
 * `RecordsCounter` is the pure part (bytes in, counts out; tested in
 * raw-ws-reader.test.ts against the codec's own counting); `connectRaw`
 * does the HTTP upgrade and writes masked client frames.
 * Server frames are unmasked and unfragmented (uWS sends whole messages).
 */
import { randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import { BATCH_HEADER_BYTES, BATCH_OVERHEAD_BYTES, BatchField, FrameKind } from '@runnel/client/codec';

/** RecordsFrame: kind u8, topic (u16 length + bytes), partition i32, highWatermark i64, batches length u32. */
const RECORDS_FIXED_BYTES = 1 + 2 + 4 + 8 + 4;

export interface CounterEvents {
  /** A RecordsFrame ended: its record count (from batch headers) and its payload size. */
  records(count: number, payloadBytes: number): void;
  /** Any other message or control frame, whole (small: acks, answers, ping, close). */
  other(opcode: number, payload: Buffer): void;
  /** Optional: each RecordBatch header as it passes (its record count and the producer's max timestamp, ms). */
  batch?(recordCount: number, maxTimestampMs: number): void;
}

export class RecordsCounter {
  #header = Buffer.alloc(10);
  #headerHave = 0;
  #headerNeed = 2;
  #payloadLength = -1;
  #pos = 0; // position inside the current payload
  #opcode = 0;
  #isRecords = false;
  #small: Buffer[] = []; // whole payload of a non-records message
  // Records frame walk: bytes of the window [#windowAt, #windowAt + #window.length) as they pass.
  #window = Buffer.alloc(BATCH_HEADER_BYTES);
  #windowAt = 0;
  #windowHave = 0;
  #count = 0;

  constructor(private readonly on: CounterEvents) {}

  push(chunk: Buffer): void {
    let i = 0;
    while (i < chunk.length) {
      if (this.#payloadLength < 0) {
        i = this.#readHeader(chunk, i);
        continue;
      }
      const take = Math.min(chunk.length - i, this.#payloadLength - this.#pos);
      this.#payload(chunk, i, take);
      i += take;
      this.#pos += take;
      if (this.#pos === this.#payloadLength) this.#endMessage();
    }
  }

  #readHeader(chunk: Buffer, i: number): number {
    while (i < chunk.length && this.#headerHave < this.#headerNeed) this.#header[this.#headerHave++] = chunk[i++];
    if (this.#headerHave < this.#headerNeed) return i;
    const b0 = this.#header[0];
    const b1 = this.#header[1];
    if ((b0 & 0x80) === 0) throw new Error('fragmented server message: not expected from uWS');
    if (b1 & 0x80) throw new Error('masked server frame');
    const len7 = b1 & 0x7f;
    const need = len7 === 126 ? 4 : len7 === 127 ? 10 : 2;
    if (this.#headerNeed < need) {
      this.#headerNeed = need;
      return i;
    }
    this.#opcode = b0 & 0x0f;
    this.#payloadLength = len7 === 126 ? this.#header.readUInt16BE(2) : len7 === 127 ? Number(this.#header.readBigUInt64BE(2)) : len7;
    this.#pos = 0;
    this.#isRecords = false;
    this.#small = [];
    this.#count = 0;
    this.#windowAt = 0;
    this.#windowHave = 0;
    this.#headerHave = 0;
    this.#headerNeed = 2;
    if (this.#payloadLength === 0) this.#endMessage();
    return i;
  }

  /** `take` payload bytes at chunk[i], payload positions [#pos, #pos + take). */
  #payload(chunk: Buffer, i: number, take: number): void {
    if (this.#pos === 0 && take > 0) this.#isRecords = this.#opcode === 2 && chunk[i] === FrameKind.records;
    if (!this.#isRecords) {
      this.#small.push(chunk.subarray(i, i + take));
      return;
    }
    // Feed the bytes that fall into the current window; a completed window yields its next window.
    let at = this.#pos;
    const end = this.#pos + take;
    while (at < end) {
      const windowSize = this.#windowAt === 0 ? 3 : BATCH_HEADER_BYTES; // first window: kind + topic length
      const want = this.#windowAt + this.#windowHave;
      if (want >= end) return;
      if (want < at) throw new Error('records walk fell behind');
      const n = Math.min(windowSize - this.#windowHave, end - want);
      chunk.copy(this.#window, this.#windowHave, i + (want - this.#pos), i + (want - this.#pos) + n);
      this.#windowHave += n;
      at = want + n;
      if (this.#windowHave < windowSize) return;
      if (this.#windowAt === 0) {
        this.#windowAt = RECORDS_FIXED_BYTES + this.#window.readUInt16BE(1);
      } else {
        const count = this.#window.readInt32BE(BatchField.recordCount);
        this.#count += count;
        this.on.batch?.(count, Number(this.#window.readBigInt64BE(BatchField.maxTimestamp)));
        this.#windowAt += BATCH_OVERHEAD_BYTES + this.#window.readInt32BE(BatchField.batchLength);
      }
      this.#windowHave = 0;
      at = Math.max(at, this.#windowAt);
    }
  }

  #endMessage(): void {
    const length = this.#payloadLength;
    this.#payloadLength = -1;
    if (this.#isRecords) {
      if (this.#windowAt !== length || this.#windowHave !== 0) throw new Error(`records frame of ${length} bytes ends inside a batch (at ${this.#windowAt})`);
      this.on.records(this.#count, length);
    } else {
      this.on.other(this.#opcode, Buffer.concat(this.#small));
    }
  }
}

/** One client frame, masked as RFC 6455 requires of clients. */
export function maskedFrame(payload: Uint8Array, opcode = 2): Buffer {
  const len = payload.length;
  const ext = len < 126 ? 0 : len < 65536 ? 2 : 8;
  const out = Buffer.alloc(2 + ext + 4 + len);
  out[0] = 0x80 | opcode;
  out[1] = 0x80 | (ext === 0 ? len : ext === 2 ? 126 : 127);
  if (ext === 2) out.writeUInt16BE(len, 2);
  if (ext === 8) out.writeBigUInt64BE(BigInt(len), 2);
  const mask = randomBytes(4);
  mask.copy(out, 2 + ext);
  const at = 2 + ext + 4;
  for (let k = 0; k < len; k++) out[at + k] = payload[k] ^ mask[k & 3];
  return out;
}

/** Opens `ws://host:port/path` on a raw socket; resolves after the 101 with bytes after it fed to `counter`. */
export function connectRaw(url: string, counter: RecordsCounter): Promise<Socket> {
  const { hostname, port, pathname } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname);
    socket.setNoDelay(true);
    let head = Buffer.alloc(0);
    const onData = (chunk: Buffer): void => {
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) return;
      socket.off('data', onData);
      const status = head.subarray(0, head.indexOf('\r\n')).toString();
      if (!/^HTTP\/1\.1 101/.test(status)) return reject(new Error(`upgrade refused: ${status}`));
      socket.on('data', (c: Buffer) => counter.push(c));
      if (head.length > end + 4) counter.push(head.subarray(end + 4));
      resolve(socket);
    };
    socket.on('data', onData);
    socket.once('error', reject);
    socket.once('connect', () => {
      socket.write(`GET ${pathname} HTTP/1.1\r\nHost: ${hostname}:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n`
        + `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n\r\n`);
    });
  });
}
