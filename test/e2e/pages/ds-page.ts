/**
 * Test page for test/streams/browser-resume.test.ts: `window.dsPage` on
 * `@durable-streams/client` in Chromium, talking to a Runnel broker on
 * another origin (CORS). The read offset and the producer epoch are kept in
 * localStorage, as an application would keep them across reloads.
 */
import { DurableStream, IdempotentProducer, stream } from '@durable-streams/client';

type Msg = { i: number };

// @durable-streams/client 0.2.6 depends on fastq, whose promise queue calls `process.nextTick` when it
// drains (IdempotentProducer.flush): a page needs that one function (a bundler for the web provides it the same way).
const g = globalThis as { process?: { nextTick: (fn: (...args: unknown[]) => void, ...args: unknown[]) => void; env: Record<string, string> } };
g.process ??= { nextTick: (fn, ...args) => queueMicrotask(() => fn(...args)), env: {} };

export interface DsPageApi {
  /** Creates the JSON stream at `url` (201, or 200 when it exists). */
  create(url: string): Promise<void>;
  /** Appends `{ i }` for i in [from, to) through the page's IdempotentProducer (made at the stored epoch); resolves once every batch is acknowledged. */
  write(url: string, from: number, to: number): Promise<{ epoch: number; errors: string[] }>;
  /** Starts the next producer session one epoch higher (a restarted writer, protocol §5.2.1). */
  bumpEpoch(): number;
  /** A catch-up read from `offset` (the stored one by default); stores the offset it ends at. */
  read(url: string, offset?: string): Promise<{ items: number[]; offset: string; upToDate: boolean }>;
  storedOffset(): string | null;
  /** A live long-poll reader from `offset` that keeps reading (the client retries through broker outages); `followed()` reads what it got. */
  follow(url: string, offset: string): void;
  followed(): { items: number[]; errors: string[] };
}

declare global {
  interface Window { dsPage: DsPageApi }
}

const OFFSET_KEY = 'ds-offset';
const EPOCH_KEY = 'ds-epoch';
let producer: IdempotentProducer | undefined;
const writeErrors: string[] = [];
const following = { items: [] as number[], errors: [] as string[] };
const epoch = (): number => Number(localStorage.getItem(EPOCH_KEY) ?? '0');

window.dsPage = {
  async create(url) {
    await DurableStream.create({ url, contentType: 'application/json' });
  },

  async write(url, from, to) {
    // One producer per page: a second IdempotentProducer at the same epoch would restart at sequence 0, and the
    // server would rightly answer its appends as duplicates. A new page bumps the epoch first (bumpEpoch).
    producer ??= new IdempotentProducer(new DurableStream({ url, contentType: 'application/json' }), 'browser-tab', {
      epoch: epoch(), lingerMs: 2, onError: (e) => writeErrors.push(String(e)),
    });
    for (let i = from; i < to; i++) producer.append(JSON.stringify({ i }));
    await producer.flush();
    return { epoch: producer.epoch, errors: [...writeErrors] };
  },

  bumpEpoch() {
    const next = epoch() + 1;
    localStorage.setItem(EPOCH_KEY, String(next));
    return next;
  },

  async read(url, offset) {
    const res = await stream<Msg>({ url, offset: offset ?? localStorage.getItem(OFFSET_KEY) ?? '-1', live: false, json: true });
    const items = (await res.json()).map((m) => m.i);
    localStorage.setItem(OFFSET_KEY, res.offset);
    return { items, offset: res.offset, upToDate: res.upToDate };
  },

  storedOffset() {
    return localStorage.getItem(OFFSET_KEY);
  },

  follow(url, offset) {
    void stream<Msg>({ url, offset, live: 'long-poll', json: true, onError: (e) => { following.errors.push(String(e)); return {}; } })
      .then((res) => { res.subscribeJson((batch) => { following.items.push(...batch.items.map((m) => m.i)); }); })
      .catch((e: unknown) => { following.errors.push(String(e)); });
  },

  followed() {
    return { items: [...following.items], errors: [...following.errors] };
  },
};
