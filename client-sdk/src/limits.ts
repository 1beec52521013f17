/**
 * Every client-side limit, named, with its default and what it bounds
 * (the broker's own limits live in server/src/limits.ts; the broker's
 * helloOk limits cap these at runtime).
 */
import { assert } from './codec/error-codes.ts';

export interface ClientLimits {
  /** Records wait this long for more to join their batch. 0 = send at once; larger = bigger batches, more latency. */
  lingerMs: number;
  /** A batch is frozen at this size (bytes). Must stay under the broker's maxBatchBytes (helloOk caps it). */
  maxBatchBytes: number;
  /** A batch is frozen at this many records. */
  maxBatchRecords: number;
  /** Unacknowledged records the outbox holds; `send` beyond it rejects with OUTBOX_FULL (memory/IndexedDB quota). */
  maxOutboxRecords: number;
  /** Unacknowledged bytes the outbox holds; `send` beyond it rejects with OUTBOX_FULL. */
  maxOutboxBytes: number;
  /** Produce requests in flight per partition (Kafka's max.in.flight for idempotence is 5). */
  maxInflightPerPartition: number;
  /** Wait before resending a partition's batches after a retryable error. */
  retryBackoffMs: number;
  /** Credit granted per subscription (bytes the broker may send ahead of the handler); re-granted at half. */
  creditWindowBytes: number;
  /** A beacon flush sends at most this many bytes (browsers cap keepalive/beacon bodies at 64 KiB). */
  maxBeaconBytes: number;
  /** How often the client looks for outboxes left by clients that are gone (closed tabs without a SharedWorker) to drain them. */
  orphanCheckMs: number;
}

export const defaultClientLimits: ClientLimits = {
  lingerMs: 5,
  maxBatchBytes: 512 * 1024,
  maxBatchRecords: 10_000,
  maxOutboxRecords: 100_000,
  maxOutboxBytes: 64 * 1024 * 1024,
  maxInflightPerPartition: 5,
  retryBackoffMs: 250,
  creditWindowBytes: 1024 * 1024,
  maxBeaconBytes: 64 * 1024,
  orphanCheckMs: 10_000,
};

/** Merges user limits over the defaults and rejects combinations that cannot work. */
export function validateClientLimits(input: Partial<ClientLimits> = {}): ClientLimits {
  const limits = { ...defaultClientLimits, ...input };
  for (const [name, value] of Object.entries(limits)) assert(Number.isFinite(value) && value >= 0, `limit ${name} must be a finite number >= 0`);
  assert(limits.maxBatchRecords >= 1 && limits.maxInflightPerPartition >= 1, 'maxBatchRecords and maxInflightPerPartition must be >= 1');
  assert(limits.maxOutboxBytes >= limits.maxBatchBytes, 'maxOutboxBytes must be >= maxBatchBytes');
  assert(limits.creditWindowBytes >= 1024, 'creditWindowBytes must be >= 1024');
  return limits;
}
