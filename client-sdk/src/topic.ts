/**
 * Typed topics. A topic pairs a name with a schema (zod or anything with
 * `parse`): produce accepts the schema's input type, consume hands out its
 * output type. Values travel as UTF-8 JSON, exactly like the HTTP API
 * (docs/http.md), so HTTP, CLI and SDK clients read each other's
 * records. zod is a peer dependency the core never imports.
 */
import { RunnelError } from './codec/error-codes.ts';
import { readUtf8Lenient } from './codec/utf8.ts';
import { VERBOSE } from '#verbose';

/** The validation the SDK needs from a schema; zod schemas fit. */
export interface Schema<In = unknown, Out = In> {
  parse(value: unknown): Out;
  /** Type-only marker: zod's input type. */
  readonly _input?: In;
}

/** What to do with a consumed value that fails the schema. */
export type InvalidValuePolicy = 'error' | 'skip' | 'throw';

export interface Topic<In = unknown, Out = In> {
  readonly name: string;
  readonly schema: Schema<In, Out> | null;
  /** 'error' (default): emit an `error` event and skip; 'skip': skip silently; 'throw': stop the subscription. */
  readonly onInvalid: InvalidValuePolicy;
}

type InputOf<S> = S extends { _input?: infer I } ? (unknown extends I ? OutputOf<S> : I) : OutputOf<S>;
type OutputOf<S> = S extends { parse(value: unknown): infer O } ? O : unknown;

/**
 * Declares a typed topic.
 * @example
 * const pageViews = defineTopic('page-views', z.object({ path: z.string(), userId: z.string() }));
 * await client.producer.send(pageViews, { path: '/', userId: 'u1' }, { key: 'u1' });
 */
export function defineTopic<S extends Schema<any, any>>(name: string, schema: S, options: { onInvalid?: InvalidValuePolicy } = {}): Topic<InputOf<S>, OutputOf<S>> {
  return { name, schema, onInvalid: options.onInvalid ?? 'error' };
}

/** Either a typed topic or a bare topic name (values are any JSON). */
export type TopicRef<In = unknown, Out = In> = Topic<In, Out> | string;

export function toTopic<In, Out>(ref: TopicRef<In, Out>): Topic<In, Out> {
  return typeof ref === 'string' ? { name: ref, schema: null, onInvalid: 'error' } : ref;
}

const encoder = new TextEncoder();

/** Validates then serializes a value to UTF-8 JSON; SCHEMA_VALIDATION_FAILED before anything is sent. */
export function encodeValue<In>(topic: Topic<In, unknown>, value: In): Uint8Array {
  return encoder.encode(valueJson(topic, value));
}

/** The JSON text of a valid value (SCHEMA_VALIDATION_FAILED if the schema refuses it or it is not JSON). */
function valueJson<In>(topic: Topic<In, unknown>, value: In): string {
  if (topic.schema) {
    try {
      topic.schema.parse(value);
    } catch (cause) {
      throw new RunnelError('SCHEMA_VALIDATION_FAILED', VERBOSE ? `value for topic "${topic.name}" does not match its schema` : '', { cause });
    }
  }
  const json = JSON.stringify(value);
  if (json === undefined) throw new RunnelError('SCHEMA_VALIDATION_FAILED', VERBOSE ? `value for topic "${topic.name}" is not JSON-serializable` : '');
  return json;
}

/** Bytes of one ValueArena slab (the values of a tick that need more get a slab of their own size). */
const ARENA_SLAB_BYTES = 64 * 1024;

/** What a ValueArena writes a value into (an outbox record). */
export interface ValueTarget { value: Uint8Array | null }

/**
 * Encodes values into shared slabs: each value is a view of a slab, so a small
 * value costs no ArrayBuffer of its own (V8 gives every typed array above 64
 * bytes an off-heap backing store: for a 100 B value its allocation and
 * collection cost more than JSON.stringify; issue 13, producer hot path).
 * The JSON texts of a tick are written in bulk by `flush`: one `encodeInto` of
 * their concatenation (a copy loop per value cost more than the stringify).
 * Invariant: a slab's bytes below its fill mark are never changed (a value is
 * written above it, then the mark moves past it), so a view stays valid for as
 * long as it is held (a slab lives while any view of it does).
 * NB: a structured clone (IndexedDB put, postMessage) of a view copies its whole
 * slab: stores that clone copy the view out first (indexeddb-storage.ts).
 */
export class ValueArena {
  #slab = new Uint8Array(0);
  #at = 0;
  /** Targets whose value is still text (`#texts`, same index): written by `flush`. */
  readonly #waiting: ValueTarget[] = [];
  readonly #texts: string[] = [];

  /**
   * Validates and serializes `value` for `target` (SCHEMA_VALIDATION_FAILED before anything is sent); returns its
   * byte length if the text is ASCII. NB: `target.value` stays null until `flush`, which reports a longer UTF-8.
   */
  encode<In>(topic: Topic<In, unknown>, value: In, target: ValueTarget): number {
    const json = valueJson(topic, value);
    this.#waiting.push(target);
    this.#texts.push(json);
    return json.length;
  }

  /**
   * Writes every waiting value, each a view of one region: ASCII text (most JSON) needs one `encodeInto` of the
   * concatenation; if any text is not ASCII, each is encoded on its own and `resized(target, extra)` told the
   * bytes beyond its text length. Call before any waiting target's value is read.
   */
  flush(resized: (target: ValueTarget, extraBytes: number) => void): void {
    const waiting = this.#waiting, texts = this.#texts, n = waiting.length;
    if (n === 0) return;
    const text = texts.join(''), length = text.length;
    if (this.#at + length > this.#slab.length) {
      this.#slab = new Uint8Array(Math.max(ARENA_SLAB_BYTES, length));
      this.#at = 0;
    }
    let at = this.#at;
    // NB: any character beyond ASCII takes more UTF-8 bytes than UTF-16 units, so the region (one byte per unit) fills before all is read.
    const ascii = encoder.encodeInto(text, this.#slab.subarray(at, at + length)).read === length;
    for (let i = 0; i < n; i++) {
      const chars = texts[i].length;
      if (ascii) waiting[i].value = this.#slab.subarray(at, (at += chars));
      else {
        const bytes = (waiting[i].value = encoder.encode(texts[i]));
        if (bytes.length > chars) resized(waiting[i], bytes.length - chars);
      }
    }
    if (ascii) this.#at = at;
    waiting.length = texts.length = 0;
  }
}

/**
 * Parses the UTF-8 JSON in `bytes[start, end)` (`bytes` null = a null value; a
 * non-JSON payload is returned as its string, like the HTTP API) and validates.
 */
export function decodeValue<Out>(topic: Topic<unknown, Out>, bytes: Uint8Array | null, start = 0, end = bytes?.length ?? 0): Out {
  return parseValue(topic, bytes === null ? null : readUtf8Lenient(bytes, start, end));
}

/** `decodeValue` after UTF-8: `text` null = a null value. SCHEMA_VALIDATION_FAILED when the schema refuses it. */
export function parseValue<Out>(topic: Topic<unknown, Out>, text: string | null): Out {
  let value: unknown = null;
  if (text !== null) {
    try {
      value = JSON.parse(text);
    } catch {
      value = text;
    }
  }
  if (!topic.schema) return value as Out;
  try {
    return topic.schema.parse(value);
  } catch (cause) {
    throw new RunnelError('SCHEMA_VALIDATION_FAILED', VERBOSE ? `record of topic "${topic.name}" does not match its schema` : '', { cause });
  }
}

export function encodeText(s: string): Uint8Array {
  return encoder.encode(s);
}

export function decodeText(b: Uint8Array, start = 0, end = b.length): string {
  return readUtf8Lenient(b, start, end);
}
