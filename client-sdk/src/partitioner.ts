/**
 * Partitioner (sans-IO): keyed records go to murmur2(key) mod n exactly as
 * Kafka's and kafkajs's default partitioner (so a user's events stay in one
 * partition, in order, whoever produced them); keyless records stick to one
 * partition until its batch completes, then switch (Kafka's sticky
 * partitioner, KIP-480), which keeps batches large at low rates.
 */
import { partitionForKey } from './codec/murmur2.ts';
import type { RandomSource } from './reconnect-policy.ts';

export class Partitioner {
  /** Current sticky partition per topic (keyless records). */
  readonly #sticky = new Map<string, number>();

  constructor(private readonly random: RandomSource) {}

  /** Partition for a record of `topic` with `partitionCount` partitions. */
  partition(topic: string, key: Uint8Array | null, partitionCount: number): number {
    if (key !== null) return partitionForKey(key, partitionCount);
    let current = this.#sticky.get(topic);
    if (current === undefined || current >= partitionCount) {
      current = Math.floor(this.random() * partitionCount);
      this.#sticky.set(topic, current);
    }
    return current;
  }

  /**
   * A batch of `topic`/`partition` was completed: if it was the sticky one,
   * pick another partition (different when there is more than one).
   */
  batchCompleted(topic: string, partition: number, partitionCount: number): void {
    if (this.#sticky.get(topic) !== partition) return;
    let next = Math.floor(this.random() * partitionCount);
    if (partitionCount > 1 && next === partition) next = (next + 1) % partitionCount;
    this.#sticky.set(topic, next);
  }
}
