/**
 * Page-exit flush. When the page is hidden (`visibilitychange`), pending
 * records are frozen into persisted batches; on `pagehide` those frozen
 * batches go to `POST /v1/topics/:topic/records?partition=N` as their exact
 * RecordBatch bytes (producer id, epoch and sequence inside; the oldest
 * batch of each partition, see BEACON_BATCHES_PER_PARTITION), with
 * `fetch(..., { keepalive: true, credentials: 'omit' })`, or
 * `navigator.sendBeacon` where fetch has no keepalive.
 * They stay in the outbox: after the next load the WebSocket resend is
 * answered as a duplicate with the original offsets. NB: only batches already
 * persisted are beaconed, so a reload can never re-freeze different
 * boundaries under a sequence the broker has seen. Browsers cap beacon bodies
 * near 64 KiB in total (`maxBeaconBytes`).
 *
 * Why not sendBeacon first: with this (non-safelisted) content type a
 * cross-origin sendBeacon is a CORS request with credentials 'include', so
 * the broker would have to echo the origin and allow credentials; with
 * `Access-Control-Allow-Origin: *` Chromium drops it after the preflight
 * while sendBeacon has already returned true (measured, Chromium 156:
 * test/e2e/sdk-beacon.test.ts). A keepalive fetch without credentials needs
 * only the broker's ordinary CORS.
 */
import type { FrozenBatch } from './storage.ts';

export const RECORD_BATCH_CONTENT_TYPE = 'application/vnd.runnel.recordbatch';

/**
 * Batches beaconed per partition: only the oldest. Page-exit requests run in
 * parallel and reach the broker in any order, and a batch whose sequence does
 * not follow the partition's last one is refused (measured: with 4 batches
 * per partition one came back 409 OUT_OF_ORDER_SEQUENCE_NUMBER, and on a
 * partition the broker had not seen the producer on yet a later batch was
 * written first, so the resend of the earlier one forced a new producer id).
 * The oldest unacknowledged batch is always either a duplicate or next.
 */
export const BEACON_BATCHES_PER_PARTITION = 1;

/** The two ways to post on page exit; each may be missing. */
export interface BeaconIo {
  /** Only when the runtime honours `keepalive` (the request outlives the page). */
  fetch?: (url: string, init: RequestInit) => Promise<unknown>;
  sendBeacon?(url: string, data: BodyInit): boolean;
}

function defaultIo(): BeaconIo {
  const nav = globalThis.navigator;
  const keepalive = typeof Request === 'function' && 'keepalive' in Request.prototype && typeof fetch === 'function';
  return { fetch: keepalive ? (url, init) => fetch(url, init) : undefined, sendBeacon: nav?.sendBeacon ? (url, data) => nav.sendBeacon(url, data) : undefined };
}

/** Starts one post; false when neither way could take it. */
function post(url: string, bytes: Uint8Array, io: BeaconIo): boolean {
  if (io.fetch) {
    io.fetch(url, { method: 'POST', body: bytes as BodyInit, keepalive: true, credentials: 'omit', headers: { 'content-type': RECORD_BATCH_CONTENT_TYPE } }).catch(() => {});
    return true;
  }
  try {
    return io.sendBeacon?.(url, new Blob([bytes as BlobPart], { type: RECORD_BATCH_CONTENT_TYPE })) ?? false;
  } catch {
    return false; // some browsers refuse non-safelisted beacon types
  }
}

export interface BeaconSource {
  freezeNow(): Promise<void>;
  frozenBatches(): FrozenBatch[];
  /** The secret issued with the batches' producer id ('' when none): the broker accepts an idempotent beacon only with it. */
  producerSecret(): string;
}

/** http(s) URL of the produce route for a batch, derived from a ws(s) bootstrap URL. */
export function beaconUrl(wsUrl: string, batch: Pick<FrozenBatch, 'topic' | 'partition'>, producerSecret = ''): string {
  const url = new URL(wsUrl);
  url.protocol = url.protocol === 'wss:' ? 'https:' : 'http:';
  url.pathname = `/v1/topics/${encodeURIComponent(batch.topic)}/records`;
  // NB: sendBeacon cannot set headers, so the producer secret rides in the query (docs/security.md).
  url.search = `?partition=${batch.partition}${producerSecret ? `&producerSecret=${encodeURIComponent(producerSecret)}` : ''}`;
  return url.toString();
}

/**
 * Sends what fits in `maxBytes`, in order, at most BEACON_BATCHES_PER_PARTITION
 * per partition (the oldest); a partition whose batch cannot go sends nothing.
 */
export function flushByBeacon(batches: FrozenBatch[], wsUrl: string, maxBytes: number, io: BeaconIo = defaultIo(), producerSecret = ''): number {
  let sent = 0, budget = maxBytes;
  const blocked = new Set<string>();
  const perPartition = new Map<string, number>();
  for (const b of batches) {
    const key = `${b.topic}/${b.partition}`;
    const count = perPartition.get(key) ?? 0;
    if (blocked.has(key) || b.bytes.length > budget || count >= BEACON_BATCHES_PER_PARTITION || !post(beaconUrl(wsUrl, b, producerSecret), b.bytes, io)) {
      blocked.add(key);
      continue;
    }
    perPartition.set(key, count + 1);
    budget -= b.bytes.length;
    sent++;
  }
  return sent;
}

/** Wires the page lifecycle; returns the remover. No-op outside a document. */
export function installBeacon(source: BeaconSource, wsUrl: () => string, maxBytes: number): () => void {
  if (typeof document === 'undefined' || typeof addEventListener !== 'function') return () => {};
  const onVisibility = (): void => { if (document.visibilityState === 'hidden') source.freezeNow().catch(() => {}); }; // NB: an outbox that failed to load was reported by the producer
  const onPageHide = (): void => { flushByBeacon(source.frozenBatches(), wsUrl(), maxBytes, undefined, source.producerSecret()); };
  document.addEventListener('visibilitychange', onVisibility);
  addEventListener('pagehide', onPageHide);
  return () => {
    document.removeEventListener('visibilitychange', onVisibility);
    removeEventListener('pagehide', onPageHide);
  };
}
