/**
 * Quota configuration: rates per authenticated subject and per client IP,
 * counts per IP, connection and subject, and the bounds of the quota
 * tables themselves. Every value is named here with its default and what
 * it costs to set wrong; zod checks it once at start-up.
 *
 * Defaults: every quota is off (0 / unset), as in Kafka, so enabling the
 * module changes nothing until an operator sets values; the table bounds
 * are always on. docs/security.md ("Quotas") gives production values.
 */
import { z } from 'zod';
import { ConfigError } from '../config-error.ts';

/** A rate: `perSecond` sustained, up to `burst` at once (default: one second's worth). */
const RateSchema = z.strictObject({
  perSecond: z.number().int().min(1),
  burst: z.number().int().min(1).optional(),
});

const RateQuotasSchema = z.strictObject({
  /** Record batch bytes produced per second. Too low throttles real ingest; unset = unlimited. */
  produceBytes: RateSchema.optional(),
  /** Records produced per second (a flood of tiny records costs per-record work even when bytes are few). */
  produceRecords: RateSchema.optional(),
  /** Bytes fetched per second: WebSocket credit grants (withheld until repaid; catch-up and live alike) and HTTP reads (fetch, long poll, SSE). */
  fetchBytes: RateSchema.optional(),
});

export const QuotaConfigSchema = z.strictObject({
  /** Rates per authenticated subject (token `sub`); the anonymous principal has none (it is one shared name). */
  perSubject: RateQuotasSchema.default({}),
  /** Rates per client IP, for every client. NB: behind a proxy every client has the proxy's IP unless the request layer takes the forwarded address. */
  perIp: RateQuotasSchema.default({}),
  /** WebSocket connections per client IP; 0 = no quota (the broker-wide maxConnections still holds). */
  maxConnectionsPerIp: z.number().int().min(0).default(0),
  /** Subscriptions per connection; 0 = no quota (the broker-wide maxSubscriptionsPerConnection limit still holds). NB: not applied by the broker yet (docs/security.md, Quotas). */
  maxSubscriptionsPerConnection: z.number().int().min(0).default(0),
  /** Topics a subject may create (counted while they exist); 0 = no quota (maxTopics still holds). */
  maxTopicsPerSubject: z.number().int().min(0).default(0),
  /**
   * Keys (subject, IP or connection, per quota kind) held in the quota tables, rate buckets and
   * counters each. Over it the least recently used bucket is dropped (lossless when it had refilled;
   * otherwise that client gets a fresh burst: counted as evictedActiveBuckets), and a new counter is
   * refused LIMIT_EXCEEDED. Too low lets many clients escape their rate by evicting each other; too
   * high costs ~150 bytes per key.
   */
  maxTrackedKeys: z.number().int().min(16).default(100_000),
  /** Buckets a sweep() inspects at most, from the least recently used end: bounds the work of one sweep. */
  sweepBatch: z.number().int().min(1).default(1000),
});

export type QuotaConfig = z.output<typeof QuotaConfigSchema>;
export type QuotaConfigInput = z.input<typeof QuotaConfigSchema>;

/** Validates a raw quota config (from the config file); throws ConfigError naming the field. */
export function parseQuotaConfig(raw: unknown, source = 'quotas'): QuotaConfig {
  const parsed = QuotaConfigSchema.safeParse(raw ?? {});
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  throw new ConfigError(`${source}${issue.path.map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`)).join('')}: ${issue.message}`);
}
