/**
 * The adaptive credit window and the hidden-page pause of partition streams,
 * against an in-memory wire that plays the broker's credit rule (send whole
 * frames while the credit covers them, nothing beyond) and a reader that
 * releases frames when the test says. Through real Chromium and a real
 * broker: test/e2e/sdk-hidden-credit.test.ts and `npm run bench -- client`.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setBaseOffset } from './codec/batch-header.ts';
import { encodeRecordBatch } from './codec/record-batch.ts';
import type { ClientFrame, RecordsFrame, StartPosition, SubscribedFrame } from './codec/protocol.ts';
import type { Connection } from './connection.ts';
import { StreamRegistry, type PageVisibility, type StreamReader } from './partition-stream.ts';

const RECORDS_PER_BATCH = 100;
const batch = encodeRecordBatch({ records: Array.from({ length: RECORDS_PER_BATCH }, () => ({ value: new Uint8Array(90), timestampMs: 1 })) });
const BATCH_BYTES = batch.length;

/** The broker side of one connection: per partition a log of `end` offsets served from `next` while credit lasts. */
class Wire {
  state = 'connected';
  readonly subs = new Map<number, { next: number; credit: number; end: number }>();
  readonly credits: { partition: number; bytes: number }[] = [];
  #listener: (frame: RecordsFrame | SubscribedFrame) => void = () => {};
  /** Batches per frame (the broker's catch-up read size in batches). */
  constructor(readonly batchesPerFrame: number, readonly endOffset: number) {}

  asConnection(): Connection {
    return this as unknown as Connection;
  }
  onFrame(listener: (frame: RecordsFrame | SubscribedFrame) => void): () => void {
    this.#listener = listener;
    return () => {};
  }
  on(): void {}
  request(frame: { partition: number; from: StartPosition; creditBytes: number }, _timeoutMs: number, onAnswer: (a: SubscribedFrame) => void): Promise<never> {
    const start = frame.from.kind === 'offset' ? frame.from.offset : 0;
    this.subs.set(frame.partition, { next: start, credit: frame.creditBytes, end: this.endOffset });
    queueMicrotask(() => onAnswer({ type: 'subscribed', requestId: 1, topic: 't', partition: frame.partition, topicId: 'id', errorCode: 0, startOffset: start, logStartOffset: 0, highWatermark: this.endOffset }));
    return new Promise(() => {});
  }
  send(frame: ClientFrame): boolean {
    if (frame.type !== 'credit') return true;
    this.credits.push({ partition: frame.partition, bytes: frame.bytes });
    this.subs.get(frame.partition)!.credit += frame.bytes;
    return true;
  }
  /** Sends every frame the credit allows (whole batches, at most batchesPerFrame per frame), or at most `maxFrames`; returns how many. */
  pump(partition: number, maxFrames = Infinity): number {
    const sub = this.subs.get(partition)!;
    let frames = 0;
    for (; frames < maxFrames;) {
      const batches = Math.min(this.batchesPerFrame, Math.floor(sub.credit / BATCH_BYTES), Math.ceil((sub.end - sub.next) / RECORDS_PER_BATCH));
      if (batches <= 0) return frames;
      const bytes = new Uint8Array(batches * BATCH_BYTES);
      for (let i = 0; i < batches; i++) {
        bytes.set(batch, i * BATCH_BYTES);
        setBaseOffset(bytes, i * BATCH_BYTES, sub.next + i * RECORDS_PER_BATCH);
      }
      sub.next += batches * RECORDS_PER_BATCH;
      sub.credit -= bytes.length;
      frames++;
      this.#listener({ type: 'records', topic: 't', partition, highWatermark: sub.end, batches: bytes });
    }
    return frames;
  }
}

/** A reader that queues frames and releases them when told; checks offsets arrive contiguous, each once. */
class Reader implements StreamReader {
  readonly start: StartPosition = { kind: 'offset', offset: 0 };
  readonly topicId = '';
  next = 0;
  readonly held: { bytes: number; release: () => void }[] = [];
  get neededOffset(): number { return this.next; }
  get heldBytes(): number { return this.held.reduce((n, h) => n + h.bytes, 0); }
  subscribed(): void {}
  rejected(): void { throw new Error('rejected'); }
  deliver(frame: RecordsFrame, firstOffset: number, lastOffset: number, held: { release(): void }): boolean {
    assert.equal(firstOffset, this.next, 'contiguous: no gap, no duplicate');
    this.next = lastOffset + 1;
    this.held.push({ bytes: frame.batches.length, release: () => held.release() });
    return true;
  }
  releaseAll(): void { this.releaseSome(Infinity); }
  releaseSome(frames: number): void {
    for (const h of this.held.splice(0, frames)) h.release();
  }
}

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));
const window = (wire: Wire, reader: Reader, p = 0): number => wire.subs.get(p)!.credit + reader.heldBytes;

test('a handler faster than the credit round trips grows the window, up to maxCreditWindowBytes and never past it', async () => {
  const base = 4 * BATCH_BYTES, max = 32 * BATCH_BYTES;
  const wire = new Wire(2, 1_000_000);
  const streams = new StreamRegistry(wire.asConnection(), () => base, { maxWindowBytes: max, maxGrowthBytes: 1e9 });
  const reader = new Reader();
  streams.attach('t', 0, reader);
  await tick();
  let largest = 0, framesAtOnce = 0;
  while (reader.next < 200_000) {
    framesAtOnce = Math.max(framesAtOnce, wire.pump(0));
    largest = Math.max(largest, window(wire, reader));
    reader.releaseAll(); // the handler empties its queue before the next frames arrive: it runs dry every round trip
  }
  assert.equal(largest, max, `the window reached the ceiling (largest ${largest}, base ${base}, max ${max})`);
  assert.equal(framesAtOnce, max / (2 * BATCH_BYTES), 'a whole ceiling window of frames in flight per round trip');
  assert.ok(wire.credits.every((c) => c.bytes <= max), 'no single grant exceeds the ceiling');
});

test('frames that arrive one at a time (a catch-up read sent as several frames) grow the window at most once per window released', async () => {
  const base = 4 * BATCH_BYTES, max = 32 * BATCH_BYTES;
  const wire = new Wire(1, 1_000_000);
  const streams = new StreamRegistry(wire.asConnection(), () => base, { maxWindowBytes: max, maxGrowthBytes: 1e9 });
  const reader = new Reader();
  streams.attach('t', 0, reader);
  await tick();
  // The readers run dry after every frame, but only one window's worth of frames has passed after the fourth.
  for (let i = 0; i < 3; i++) {
    wire.pump(0, 1);
    reader.releaseAll();
    assert.ok(window(wire, reader) <= base, `frame ${i + 1}: still the base window (${window(wire, reader)} <= ${base})`);
  }
  let largest = 0;
  while (reader.next < 200_000) {
    wire.pump(0, 1);
    reader.releaseAll();
    largest = Math.max(largest, window(wire, reader));
  }
  assert.equal(largest, max, 'it still grows to the ceiling');
});

test('a fixed window (maxCreditWindowBytes = creditWindowBytes) never grows', async () => {
  const base = 4 * BATCH_BYTES;
  const wire = new Wire(2, 1_000_000);
  const streams = new StreamRegistry(wire.asConnection(), () => base, { maxWindowBytes: base, maxGrowthBytes: 1e9 });
  const reader = new Reader();
  streams.attach('t', 0, reader);
  await tick();
  while (reader.next < 50_000) {
    wire.pump(0);
    assert.ok(window(wire, reader) <= base, 'within the fixed window');
    reader.releaseAll();
  }
});

test('a slow handler shrinks a grown window back to the base; delivery stays contiguous', async () => {
  const base = 4 * BATCH_BYTES, max = 32 * BATCH_BYTES;
  const wire = new Wire(2, 10_000_000);
  const streams = new StreamRegistry(wire.asConnection(), () => base, { maxWindowBytes: max, maxGrowthBytes: 1e9 });
  const reader = new Reader();
  streams.attach('t', 0, reader);
  await tick();
  while (window(wire, reader) < max) { wire.pump(0); reader.releaseAll(); }
  // Now slow: one frame handled per round, the rest of the window waits; the handler never runs dry.
  let rounds = 0;
  while (rounds++ < 2_000) { wire.pump(0); reader.releaseSome(1); }
  wire.pump(0);
  assert.ok(window(wire, reader) <= base, `back at the base window (${window(wire, reader)} <= ${base})`);
});

test('streams catching up together share maxCreditTotalBytes of growth', async () => {
  const base = 4 * BATCH_BYTES, max = 32 * BATCH_BYTES, budget = 40 * BATCH_BYTES;
  const wire = new Wire(2, 1_000_000);
  const streams = new StreamRegistry(wire.asConnection(), () => base, { maxWindowBytes: max, maxGrowthBytes: budget });
  const readers = [0, 1, 2, 3].map((p) => { const r = new Reader(); streams.attach('t', p, r); return r; });
  await tick();
  let largestTotal = 0;
  while (readers.some((r) => r.next < 100_000)) {
    readers.forEach((_, p) => wire.pump(p));
    largestTotal = Math.max(largestTotal, readers.reduce((n, r, p) => n + window(wire, r, p), 0));
    for (const r of readers) r.releaseAll();
  }
  assert.ok(largestTotal <= 4 * base + budget, `all windows ${largestTotal} <= 4 bases + the budget ${4 * base + budget}`);
  assert.ok(largestTotal > 4 * base, 'they did grow');
});

test('at the live tail (no backlog) the window does not grow', async () => {
  const base = 4 * BATCH_BYTES;
  const wire = new Wire(2, 0);
  const streams = new StreamRegistry(wire.asConnection(), () => base, { maxWindowBytes: 32 * BATCH_BYTES, maxGrowthBytes: 1e9 });
  const reader = new Reader();
  streams.attach('t', 0, reader);
  await tick();
  for (let i = 0; i < 200; i++) {
    wire.subs.get(0)!.end += 2 * RECORDS_PER_BATCH; // records arrive; each frame carries its own end as high watermark
    wire.pump(0);
    assert.ok(window(wire, reader) <= base);
    reader.releaseAll();
  }
  assert.equal(reader.next, 200 * 2 * RECORDS_PER_BATCH);
});

test('pauseWhenHidden: no credit while hidden, at most the granted window delivered; visible again resumes contiguous', async () => {
  const base = 4 * BATCH_BYTES;
  const listeners = new Set<() => void>();
  const page = { hidden: false };
  const visibility: PageVisibility = { get hidden() { return page.hidden; }, onChange: (l) => { listeners.add(l); return () => listeners.delete(l); } };
  const wire = new Wire(2, 1_000_000);
  const streams = new StreamRegistry(wire.asConnection(), () => base, { maxWindowBytes: 32 * BATCH_BYTES, maxGrowthBytes: 1e9, visibility });
  const reader = new Reader();
  streams.attach('t', 0, reader);
  await tick();
  for (let i = 0; i < 5; i++) { wire.pump(0); reader.releaseAll(); }
  page.hidden = true;
  listeners.forEach((l) => l());
  const windowAtHide = window(wire, reader), atHide = reader.next, grantsAtHide = wire.credits.length;
  for (let i = 0; i < 20; i++) { wire.pump(0); reader.releaseAll(); }
  assert.equal(wire.credits.length, grantsAtHide, 'no credit granted while hidden');
  assert.ok((reader.next - atHide) / RECORDS_PER_BATCH * BATCH_BYTES <= windowAtHide, 'delivered at most the window granted before hiding');
  assert.equal(wire.pump(0), 0, 'the broker is out of credit');
  page.hidden = false;
  listeners.forEach((l) => l());
  assert.ok(wire.credits.length > grantsAtHide, 'visible: the credit owed is granted at once');
  const resumed = reader.next;
  for (let i = 0; i < 5; i++) { wire.pump(0); reader.releaseAll(); }
  assert.ok(reader.next > resumed, 'delivery resumed (contiguity checked by the reader)');
  streams.detach('t', 0, reader);
  assert.equal(listeners.size, 0, 'the visibility listener goes with the last stream');
});
