/**
 * Catch-up reads: subscriptions behind the live channel are served from the
 * partition by one broker-wide loop that pulls work at its own pace (STYLE.md #8):
 * at most `maxConcurrentCatchUpReads` reads in flight, each bounded by
 * `catchUpReadBytes` and by the subscription's credit, and a socket over its
 * backpressure limit is not read for at all. Broker memory for catch-up is
 * therefore ≤ maxConcurrentCatchUpReads × catchUpReadBytes plus what uWS
 * buffers under the backpressure limit.
 *
 * Invariant: a step sends only whole stored batches, never more payload
 * bytes than the subscription's credit, and never offsets at or above the
 * channel end it read against (`maxOffset`), so the live channel continues
 * exactly where catch-up stops. What one read returns goes out as frames of
 * at most `catchUpFrameBytes` (whole batches), in offset order.
 */
import { ErrorTable, RunnelError, encodeRecordsFrame, readBatchHeader } from '@runnel/client/codec';
import type { Limits } from '../limits.ts';
import type { RunnelMetrics } from '../metrics.ts';
import type { Subscription } from './subscription.ts';

export class CatchUpScheduler {
  private readonly queue: Subscription[] = [];
  private head = 0;
  private active = 0;
  private stopped = false;

  constructor(private readonly limits: Limits, private readonly metrics?: RunnelMetrics) {}

  get pending(): number {
    return this.queue.length - this.head;
  }

  enqueue(sub: Subscription): void {
    if (sub.queued || sub.reading || sub.state !== 'catchUp' || this.stopped) return;
    sub.queued = true;
    this.queue.push(sub);
    this.pump();
  }

  stop(): void {
    this.stopped = true;
  }

  private pump(): void {
    while (this.active < this.limits.maxConcurrentCatchUpReads && this.head < this.queue.length) {
      const sub = this.queue[this.head++];
      if (this.head > 1024 && this.head * 2 > this.queue.length) {
        this.queue.splice(0, this.head);
        this.head = 0;
      }
      sub.queued = false;
      if (sub.state !== 'catchUp' || sub.connection.isClosed) continue;
      this.active++;
      sub.reading = true;
      void this.step(sub).finally(() => {
        this.active--;
        sub.reading = false;
        sub.fanout.advance(sub);
        this.pump();
      });
    }
  }

  /** One bounded read + send for one subscription. Never throws. */
  private async step(sub: Subscription): Promise<void> {
    const fanout = sub.fanout;
    const end = fanout.liveEnd;
    if (sub.nextOffset >= end || sub.credit <= 0 || sub.connection.roomBytes() <= 0) return;
    const maxBytes = Math.min(sub.credit, this.limits.catchUpReadBytes);
    let read: { batches: Uint8Array; nextOffset: number; highWatermark: number };
    try {
      read = await fanout.source.read(sub.nextOffset, maxBytes, { maxOffset: end });
    } catch (e) {
      if (sub.state !== 'catchUp') return;
      const code = e instanceof RunnelError ? e.code : ErrorTable.KAFKA_STORAGE_ERROR.code;
      fanout.fail(sub, code);
      return;
    }
    if (sub.state !== 'catchUp' || sub.connection.isClosed) return;
    const frames = fitFrames(read.batches, sub.credit, end, this.limits.catchUpFrameBytes);
    if (frames.length === 0) {
      // The next batch is larger than the remaining credit: park until enough credit arrives.
      const first = readBatchHeader(read.batches, 0);
      if (first.ok) sub.minCredit = first.value.totalBytes;
      else fanout.fail(sub, ErrorTable.UNKNOWN_SERVER_ERROR.code); // the log returned nothing below its end
      return;
    }
    const highWatermark = Math.min(read.highWatermark, end);
    let at = 0;
    for (const part of frames) {
      const frame = encodeRecordsFrame(fanout.topic.name, fanout.partition, highWatermark, read.batches.subarray(at, at + part.bytes));
      if (!sub.connection.send(frame)) return;
      at += part.bytes;
      sub.nextOffset = part.nextOffset;
      sub.credit -= part.bytes;
      sub.minCredit = 1;
      this.metrics?.recordsOut.inc({ topic: fanout.topic.name }, part.records);
      this.metrics?.bytesOut.inc({ topic: fanout.topic.name }, part.bytes);
    }
  }
}

/**
 * The longest prefix of whole batches within `credit` bytes and below `end` (per batch, not per record), cut at
 * batch boundaries into consecutive frames of at most `maxFrameBytes` each (a batch larger than that is a frame
 * alone). Per frame: its bytes, records and the offset after it (its last batch's lastOffset + 1). Empty when
 * the first batch does not fit.
 */
export function fitFrames(batches: Uint8Array, credit: number, end: number, maxFrameBytes: number): { bytes: number; records: number; nextOffset: number }[] {
  const frames: { bytes: number; records: number; nextOffset: number }[] = [];
  let at = 0;
  let current = { bytes: 0, records: 0, nextOffset: -1 };
  while (at < batches.length) {
    const header = readBatchHeader(batches, at);
    if (!header.ok) break;
    const h = header.value;
    if (at + h.totalBytes > credit || h.baseOffset >= end) break;
    if (current.bytes > 0 && current.bytes + h.totalBytes > maxFrameBytes) {
      frames.push(current);
      current = { bytes: 0, records: 0, nextOffset: -1 };
    }
    current.bytes += h.totalBytes;
    current.records += h.recordCount;
    current.nextOffset = h.baseOffset + h.lastOffsetDelta + 1;
    at += h.totalBytes;
  }
  if (current.bytes > 0) frames.push(current);
  return frames;
}
