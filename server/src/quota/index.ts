/**
 * Client quotas for the broker's request layer: token buckets per subject
 * and per IP, counted resources, bounded tables, a snapshot for metrics.
 * Applied by server/src/request/quota-points.ts (docs/security.md, "Quotas").
 */
export { TokenBucket } from './token-bucket.ts';
export type { TokenBucketRate } from './token-bucket.ts';
export { BucketTable } from './bucket-table.ts';
export type { BucketTableStats } from './bucket-table.ts';
export { QuotaConfigSchema, parseQuotaConfig } from './config.ts';
export type { QuotaConfig, QuotaConfigInput } from './config.ts';
export { QuotaManager, RateQuotaKinds, CountQuotaKinds } from './client-quotas.ts';
export type { QuotaClient, QuotaDecision, QuotaReservation, QuotaKind, RateQuotaKind, CountQuotaKind, QuotaSnapshot } from './client-quotas.ts';
