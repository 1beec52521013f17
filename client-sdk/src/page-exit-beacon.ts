/**
 * Page-exit flush. When the page is hidden (`visibilitychange`), pending
 * records are frozen into persisted batches; on `pagehide` those frozen
 * batches go to `POST /v1/topics/:topic/records?partition=N` as their exact
 * RecordBatch bytes (producer id, epoch and sequence inside), with
 * `navigator.sendBeacon`, falling back to `fetch(..., { keepalive: true })`.
 * They stay in the outbox: after the next load the WebSocket resend is
 * answered as a duplicate with the original offsets. NB: only batches already
 * persisted are beaconed, so a reload can never re-freeze different
 * boundaries under a sequence the broker has seen. Browsers cap beacon bodies
 * near 64 KiB in total (`maxBeaconBytes`).
 */
import type { FrozenBatch } from './storage.ts';

export const RECORD_BATCH_CONTENT_TYPE = 'application/vnd.runnel.recordbatch';

export interface BeaconSource {
  freezeNow(): Promise<void>;
  frozenBatches(): FrozenBatch[];
}

/** http(s) URL of the produce route for a batch, derived from a ws(s) bootstrap URL. */
export function beaconUrl(wsUrl: string, batch: Pick<FrozenBatch, 'topic' | 'partition'>): string {
  const url = new URL(wsUrl);
  url.protocol = url.protocol === 'wss:' ? 'https:' : 'http:';
  url.pathname = `/v1/topics/${encodeURIComponent(batch.topic)}/records`;
  url.search = `?partition=${batch.partition}`;
  return url.toString();
}

/** Sends what fits in `maxBytes`, in order; per partition it stops at the first batch that cannot go. */
export function flushByBeacon(batches: FrozenBatch[], wsUrl: string, maxBytes: number, nav: { sendBeacon?(url: string, data: BodyInit): boolean } = globalThis.navigator): number {
  let sent = 0, budget = maxBytes;
  const blocked = new Set<string>();
  for (const b of batches) {
    const key = `${b.topic}/${b.partition}`;
    if (blocked.has(key) || b.bytes.length > budget) { blocked.add(key); continue; }
    const url = beaconUrl(wsUrl, b);
    let ok = false;
    try {
      ok = nav?.sendBeacon?.(url, new Blob([b.bytes as BlobPart], { type: RECORD_BATCH_CONTENT_TYPE })) ?? false;
    } catch { /* some browsers refuse non-safelisted beacon types: try fetch */ }
    if (!ok && typeof fetch === 'function') {
      fetch(url, { method: 'POST', body: b.bytes as BodyInit, keepalive: true, headers: { 'content-type': RECORD_BATCH_CONTENT_TYPE } }).catch(() => {});
      ok = true;
    }
    if (!ok) { blocked.add(key); continue; }
    budget -= b.bytes.length;
    sent++;
  }
  return sent;
}

/** Wires the page lifecycle; returns the remover. No-op outside a document. */
export function installBeacon(source: BeaconSource, wsUrl: () => string, maxBytes: number): () => void {
  if (typeof document === 'undefined' || typeof addEventListener !== 'function') return () => {};
  const onVisibility = (): void => { if (document.visibilityState === 'hidden') void source.freezeNow(); };
  const onPageHide = (): void => { flushByBeacon(source.frozenBatches(), wsUrl(), maxBytes); };
  document.addEventListener('visibilitychange', onVisibility);
  addEventListener('pagehide', onPageHide);
  return () => {
    document.removeEventListener('visibilitychange', onVisibility);
    removeEventListener('pagehide', onPageHide);
  };
}
