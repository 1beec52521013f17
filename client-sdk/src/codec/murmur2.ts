
import { VERBOSE } from '#verbose';/**
 * Kafka's murmur2 (org.apache.kafka.common.utils.Utils.murmur2, seed
 * 0x9747b28c) and the default partitioner's key → partition rule, so records
 * with the same key land on the same partition whether a browser, kafkajs or
 * the Java client produced them. Java int arithmetic is reproduced with
 * Math.imul and `>>>`; the result is a signed 32-bit int like Java's.
 */

const SEED = 0x9747b28c;
const M = 0x5bd1e995;

/** Kafka murmur2 of `key` (signed int32, exactly Java's `Utils.murmur2`). */
export function murmur2(key: Uint8Array): number {
  const length = key.length;
  let h = SEED ^ length;
  const length4 = length >>> 2;
  for (let i = 0; i < length4; i++) {
    const i4 = i << 2;
    let k = key[i4] | (key[i4 + 1] << 8) | (key[i4 + 2] << 16) | (key[i4 + 3] << 24);
    k = Math.imul(k, M);
    k ^= k >>> 24;
    k = Math.imul(k, M);
    h = Math.imul(h, M) ^ k;
  }
  // Java's fall-through switch over the 1–3 trailing bytes, written without fall-through.
  const tail = length & ~3;
  const rest = length & 3;
  if (rest === 3) h ^= key[tail + 2] << 16;
  if (rest >= 2) h ^= key[tail + 1] << 8;
  if (rest >= 1) {
    h ^= key[tail];
    h = Math.imul(h, M);
  }
  h ^= h >>> 13;
  h = Math.imul(h, M);
  h ^= h >>> 15;
  return h | 0;
}

/** Kafka's `Utils.toPositive`: clears the sign bit (not Math.abs, which overflows on MIN_VALUE). */
export function toPositive(n: number): number {
  return n & 0x7fffffff;
}

/**
 * The partition of a keyed record: `toPositive(murmur2(key)) % numPartitions`,
 * as Kafka's and kafkajs's default partitioners compute it.
 * @example partitionForKey(new TextEncoder().encode('user-42'), 12)
 */
export function partitionForKey(key: Uint8Array, numPartitions: number): number {
  if (!(Number.isInteger(numPartitions) && numPartitions > 0)) {
    throw new RangeError(VERBOSE ? `numPartitions must be a positive integer, got ${numPartitions}` : '');
  }
  return toPositive(murmur2(key)) % numPartitions;
}
