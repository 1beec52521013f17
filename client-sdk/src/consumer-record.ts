/**
 * Consumer records: the records of received RecordBatches as the objects
 * handed to handlers, decoded on demand. Walking a frame costs one object per
 * accepted record (offsets and byte ranges); its key, value (UTF-8 JSON,
 * then the topic's schema) and headers are decoded the first time they are
 * read, once, and cached. Records the offset tracker rejects are never
 * built. CRCs are checked once per received frame, however many local
 * readers share it (partition-stream.ts hands one frame to every reader).
 *
 * NB: a record keeps its frame's bytes alive until its key, value and
 * headers have all been read (copy what you keep for long, or read it).
 */
import type { BatchHeader } from './codec/record-batch.ts';
import { forEachRecord, readRecordHeaders, validateBatch } from './codec/record-batch.ts';
import { RunnelError } from './codec/error-codes.ts';
import { readUtf8Lenient } from './codec/utf8.ts';
import { parseValue, type Topic } from './topic.ts';
import { VERBOSE } from '#verbose';

const SKIP_CRC = { verifyCrc: false } as const;

export interface ConsumerRecord<T = unknown> {
  topic: string;
  partition: number;
  offset: number;
  timestampMs: number;
  /** Decoded when first read. */
  key: string | null;
  /**
   * Decoded (JSON, then the topic's schema) when first read. Reading the
   * value of an invalid record throws its SCHEMA_VALIDATION_FAILED error;
   * a handler that lets it escape gets the topic's `onInvalid` policy
   * (consumer.ts), one that never reads `value` never validates it.
   */
  value: T;
  /** Decoded when first read. */
  headers: Record<string, string>;
}

/** Not decoded yet (a value may be `undefined`-free JSON, but `null` is a value). */
const UNREAD: unique symbol = Symbol('unread');

/** Where the records of one received frame come from (one per frame and reader, shared by its records). */
interface Source<T> { topic: Topic<unknown, T>; partition: number; bytes: Uint8Array }

/**
 * A record of a received frame. Own fields are plain data; `key`, `value`
 * and `headers` are accessors over the frame's bytes with a cached result.
 */
class LazyRecord<T> implements ConsumerRecord<T> {
  readonly topic: string;
  readonly partition: number;
  readonly offset: number;
  readonly timestampMs: number;
  #source: Source<T> | null;
  readonly #keyStart: number;
  readonly #keyLength: number;
  readonly #valueStart: number;
  readonly #valueLength: number;
  readonly #headersStart: number;
  readonly #headerCount: number;
  #key: string | null | typeof UNREAD = UNREAD;
  #value: T | typeof UNREAD = UNREAD;
  #headers: Record<string, string> | null = null;
  #error: RunnelError | null = null;
  /** Key, value, headers still unread (bit set); the source is dropped at 0. */
  #unread = 7;

  constructor(source: Source<T>, offset: number, timestampMs: number, keyStart: number, keyLength: number, valueStart: number, valueLength: number, headersStart: number, headerCount: number) {
    this.topic = source.topic.name;
    this.partition = source.partition;
    this.offset = offset;
    this.timestampMs = timestampMs;
    this.#source = source;
    this.#keyStart = keyStart;
    this.#keyLength = keyLength;
    this.#valueStart = valueStart;
    this.#valueLength = valueLength;
    this.#headersStart = headersStart;
    this.#headerCount = headerCount;
  }

  #done(bit: number): void {
    if ((this.#unread &= ~bit) === 0) this.#source = null;
  }

  get key(): string | null {
    if (this.#key === UNREAD) {
      this.#key = this.#keyLength < 0 ? null : readUtf8Lenient(this.#source!.bytes, this.#keyStart, this.#keyStart + this.#keyLength);
      this.#done(1);
    }
    return this.#key;
  }

  set key(key: string | null) { this.#key = key; this.#done(1); }

  get value(): T {
    if (this.#error) throw this.#error;
    if (this.#value === UNREAD) {
      const source = this.#source!;
      const text = this.#valueLength < 0 ? null : readUtf8Lenient(source.bytes, this.#valueStart, this.#valueStart + this.#valueLength);
      try {
        this.#value = parseValue(source.topic, text);
      } catch (error) {
        this.#error = error as RunnelError;
        this.#done(2);
        throw error;
      }
      this.#done(2);
    }
    return this.#value;
  }

  set value(value: T) { this.#value = value; this.#error = null; this.#done(2); }

  get headers(): Record<string, string> {
    if (this.#headers === null) {
      const headers: Record<string, string> = {};
      if (this.#headerCount > 0) {
        const view = { headersStart: this.#headersStart, headerCount: this.#headerCount };
        // NB: the broker validated header keys (validateRecords) before storing; a bad key cannot arrive here.
        for (const h of readRecordHeaders(this.#source!.bytes, view) ?? []) headers[h.key] = h.value ? readUtf8Lenient(h.value, 0, h.value.length) : '';
      }
      this.#headers = headers;
      this.#done(4);
    }
    return this.#headers;
  }

  set headers(headers: Record<string, string>) { this.#headers = headers; this.#done(4); }

  /** Whether `error` is this record's own invalid-value error (thrown by reading `value`). */
  isOwnError(error: unknown): error is RunnelError {
    return error !== null && error === this.#error;
  }

  /** Decodes and validates the value now; its error, or null. */
  validate(): RunnelError | null {
    try {
      void this.value;
      return null;
    } catch (error) {
      if (this.isOwnError(error)) return error;
      throw error;
    }
  }

  /** A plain copy (decodes everything): for structured clone (postMessage) and JSON, which see no accessors. */
  toJSON(): ConsumerRecord<T> {
    return { topic: this.topic, partition: this.partition, offset: this.offset, timestampMs: this.timestampMs, key: this.key, value: this.value, headers: this.headers };
  }
}

export type { LazyRecord };

/**
 * A plain object with the record's fields, all decoded: what crosses
 * `postMessage` (structured clone copies own data properties only, so a
 * record handed to a handler must be made plain before it is posted).
 */
export function plainRecord<T>(record: ConsumerRecord<T>): ConsumerRecord<T> {
  return record instanceof LazyRecord ? record.toJSON() : record;
}

/** Frames whose every batch passed its CRC check: a frame shared by several readers is checked once. */
const crcChecked = new WeakSet<Uint8Array>();

/**
 * Appends to `out` the records of concatenated `batches` at or above `from`,
 * in offset order (offsets strictly increase across the frame); batches
 * wholly below `from` are not walked. CRCs are checked once per frame unless
 * `verifyCrc` is false (the structure always is). Returns the next offset
 * after the last record appended (`from` if none), or the decode error of a
 * corrupt frame (the records before it are appended).
 */
export function decodeRecords<T>(topic: Topic<unknown, T>, partition: number, batches: Uint8Array, from: number, out: LazyRecord<T>[], verifyCrc = true): number | RunnelError {
  const check = verifyCrc && !crcChecked.has(batches) ? undefined : SKIP_CRC;
  const source: Source<T> = { topic, partition, bytes: batches };
  let next = from;
  let at = 0;
  const visit = (r: { offset: number; timestampMs: number; keyStart: number; keyLength: number; valueStart: number; valueLength: number; headersStart: number; headerCount: number }): void => {
    if (r.offset < next) return;
    next = r.offset + 1;
    out.push(new LazyRecord(source, r.offset, r.timestampMs, r.keyStart, r.keyLength, r.valueStart, r.valueLength, r.headersStart, r.headerCount));
  };
  while (at < batches.length) {
    const checked = validateBatch(batches, at, check);
    if (!checked.ok) return new RunnelError(checked.code, VERBOSE ? `at byte ${at}: ${checked.message}` : '');
    const header: BatchHeader = checked.value;
    if (header.baseOffset + header.lastOffsetDelta >= next) {
      const walked = forEachRecord(batches, at, header, visit);
      if (!walked.ok) return new RunnelError(walked.code, walked.message);
    }
    at += header.totalBytes;
  }
  if (check === undefined) crcChecked.add(batches);
  return next;
}
