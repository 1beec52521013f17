/**
 * A bounded table of token buckets keyed by string, in least-recently-used
 * order (a Map re-inserted on every use). Bounded memory: at most
 * `maxKeys` buckets; a new key past it drops the least recently used one.
 *
 * Invariant: a bucket that has refilled to its burst behaves exactly like a
 * new bucket, so dropping it is lossless (an "idle" eviction). Dropping one
 * that has not refilled hands its client a fresh burst; those are counted
 * apart (`evictedActive`) so an undersized table shows in the metrics.
 */
import { TokenBucket, type TokenBucketRate } from './token-bucket.ts';

export interface BucketTableStats { readonly size: number; readonly evictedIdle: number; readonly evictedActive: number }

export class BucketTable {
  private readonly buckets = new Map<string, TokenBucket>();
  private evictedIdle = 0;
  private evictedActive = 0;

  constructor(private readonly maxKeys: number, private readonly sweepBatch: number) {}

  /** The bucket of `key` (created full when absent), marked most recently used. */
  get(key: string, rate: TokenBucketRate, nowMs: number): TokenBucket {
    let bucket = this.buckets.get(key);
    if (bucket !== undefined) {
      this.buckets.delete(key);
    } else {
      if (this.buckets.size >= this.maxKeys) this.evictOldest(nowMs);
      bucket = new TokenBucket(rate, nowMs);
    }
    this.buckets.set(key, bucket);
    return bucket;
  }

  /** Drops refilled buckets among the `sweepBatch` least recently used; returns how many. */
  sweep(nowMs: number): number {
    let inspected = 0;
    let dropped = 0;
    for (const [key, bucket] of this.buckets) {
      if (inspected++ >= this.sweepBatch) break;
      if (!bucket.isFullAt(nowMs)) continue;
      this.buckets.delete(key); // NB: deleting the current entry while iterating a Map is safe
      this.evictedIdle++;
      dropped++;
    }
    return dropped;
  }

  stats(): BucketTableStats {
    return { size: this.buckets.size, evictedIdle: this.evictedIdle, evictedActive: this.evictedActive };
  }

  private evictOldest(nowMs: number): void {
    const oldest = this.buckets.entries().next();
    if (oldest.done) return;
    const [key, bucket] = oldest.value;
    this.buckets.delete(key);
    if (bucket.isFullAt(nowMs)) this.evictedIdle++;
    else this.evictedActive++;
  }
}
