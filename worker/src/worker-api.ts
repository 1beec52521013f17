/**
 * The API one Runnel client exposes to the tabs of an origin, and its host:
 * one client (one WebSocket, one outbox) serving many tabs. Every call names
 * its tab; each tab's subscriptions keep their own consumerId (so their own
 * stored offsets) and are released when the tab goes away. Calls cross
 * threads with comlink, so values are structured-cloneable and errors travel
 * as `{ runnelError }` payloads rebuilt into RunnelError by the page.
 * Acknowledgments wait in a bounded book of tickets with deadlines
 * (tickets.ts, limits in limits.ts); a port's view releases its tickets when
 * the tab releases the port.
 */
import { finalizer, releaseProxy } from 'comlink';
import { createClient, RunnelError, type ClientOptions, type ConnectionState, type ConsumerRecord, type OutboxStore, type RecordMetadata, type SendOptions, type SubscribeOptions, type Subscription } from '@runnel/client';
import { decodeRecordBatch, type RecordHeader } from '@runnel/client/codec';
import { indexedDbStorage } from '@runnel/client/indexeddb';
import { validateHostLimits, type HostLimits } from './limits.ts';
import { SEND_ID_HEADER } from './tab-messages.ts';
import type { RemoteError } from './remote-error.ts';
import { Tickets } from './tickets.ts';

/** Cloneable client options (no constructors, no functions except a comlink-proxied token provider). */
export interface SharedClientOptions {
  /** Broker URLs: on the loss of the one in use the shared client moves to the next at once (docs/client.md "Several URLs"). */
  urls: string | string[];
  clientId?: string;
  /** IndexedDB database for the shared outbox and offsets. Default 'runnel'. */
  databaseName?: string;
  token?: string | (() => Promise<string>);
  limits?: ClientOptions['limits'];
  reconnect?: ClientOptions['reconnect'];
  /** How fast a hung broker (paused, partitioned: no close) is noticed: ClientOptions of the same names. */
  requestTimeoutMs?: number;
  pingIntervalMs?: number;
}

export { SEND_ID_HEADER };

/** The send ids in `outbox` as loaded (records and frozen batches). */
async function sendIdsIn(outbox: OutboxStore): Promise<Set<string>> {
  const ids = new Set<string>();
  const add = (headers: readonly RecordHeader[]): void => {
    for (const h of headers) if (h.key === SEND_ID_HEADER && h.value) ids.add(new TextDecoder().decode(h.value));
  };
  const { records, batches } = await outbox.load();
  for (const r of records) add(r.headers);
  for (const b of batches) {
    const decoded = decodeRecordBatch(b.bytes);
    if (decoded.ok) for (const r of decoded.value.records) add(r.headers);
  }
  return ids;
}

export type SubscribeOptionsShared = Omit<SubscribeOptions, 'signal' | 'onNotRecovered' | 'transactional'>;
export type { RemoteError } from './remote-error.ts';
export type Result<T> = { ok: T } | RemoteError;

/** What a tab can call. */
export interface WorkerApi {
  init(options: SharedClientOptions): Promise<void>;
  register(tabId: string, lockName: string): void;
  unregister(tabId: string): Promise<void>;
  /** Resolves with a ticket once the record is queued (durable: stored). */
  send(topic: string, value: unknown, options: SendOptions): Promise<Result<number>>;
  /** Resolves when the ticket's record is acknowledged; REQUEST_TIMED_OUT (retryable) past the host's ticketTimeoutMs. */
  ack(ticket: number): Promise<Result<RecordMetadata>>;
  subscribe(tabId: string, topic: string, deliver: (records: ConsumerRecord[]) => Promise<void>, options: SubscribeOptionsShared): Promise<Result<number>>;
  unsubscribe(subscriptionId: number): Promise<void>;
  state(): ConnectionState;
  onStateChange(tabId: string, listener: (state: ConnectionState) => void): void;
  outboxSize(): { records: number; bytes: number };
  flush(): Promise<void>;
  /**
   * Resolves once the outbox is empty: every record in it acknowledged or failed, including the ones this
   * client restored from storage (a leader tab that took over from one that closed: leader-link.ts).
   */
  drained(): Promise<void>;
  /** Closes the shared client (its WebSocket, timers and reconnects); the host is unusable after. */
  shutdown(): Promise<void>;
}

export function toRemoteError(error: unknown): RemoteError {
  const e = error instanceof RunnelError ? error : new RunnelError('UNKNOWN_SERVER_ERROR', String((error as Error)?.message ?? error));
  return { runnelError: { errorName: e.errorName, message: e.message } };
}

/** A record's fields as a plain object (what is cloned to another thread or tab is exactly what a handler reads). */
export const plainRecord = (r: ConsumerRecord): ConsumerRecord => ({ topic: r.topic, partition: r.partition, offset: r.offset, timestampMs: r.timestampMs, key: r.key, value: r.value, headers: r.headers });

/** A tab's callback arrives as a comlink proxy (its own MessagePort); release it so the port closes. */
function releaseCallback(callback: unknown): void {
  const release = (callback as { [releaseProxy]?: () => void } | undefined)?.[releaseProxy];
  if (typeof release === 'function') release.call(callback);
}

/** A host, and a view of it per connected port (a view's tickets are released with its port: comlink's finalizer). */
export interface PortHost {
  readonly api: WorkerApi;
  /** `api.subscribe` for a handler in this same context: the records as the client made them, not copied. */
  subscribeInPlace: WorkerApi['subscribe'];
  forPort(): WorkerApi & { [finalizer](): void };
}

/** Creates the host: lazily one client on the first `init` (later inits reuse it). */
export function createHost(): WorkerApi {
  return createPortHost().api;
}

/** The host behind createHost, with its limits (validated here) and per-port views (shared-worker.ts). */
export function createPortHost(hostLimits: Partial<HostLimits> = {}): PortHost {
  const limits = validateHostLimits(hostLimits);
  let client: ReturnType<typeof createClient> | null = null;
  /** Send ids in the outbox at start (SEND_ID_HEADER); each is dropped when its resend arrives. At most maxOutboxRecords. */
  let restored = new Set<string>();
  let initializing: Promise<void> | undefined;
  const tickets = new Tickets<RecordMetadata>(limits);
  const subscriptions = new Map<number, { tabId: string; sub: Subscription<unknown>; deliver: unknown }>();
  const stateListeners = new Map<string, (state: ConnectionState) => void>();
  let nextId = 1;
  const need = (): ReturnType<typeof createClient> => {
    if (!client) throw new RunnelError('NOT_CONNECTED', 'call init() first');
    return client;
  };
  const releaseTab = async (tabId: string): Promise<void> => {
    releaseCallback(stateListeners.get(tabId));
    stateListeners.delete(tabId);
    const mine = [...subscriptions].filter(([, s]) => s.tabId === tabId);
    for (const [id] of mine) subscriptions.delete(id);
    await Promise.all(mine.map(([, s]) => s.sub.unsubscribe()));
    for (const [, s] of mine) releaseCallback(s.deliver);
  };
  const send = async (owner: object | undefined, topic: string, value: unknown, options: SendOptions): Promise<Result<number>> => {
    try {
      const producer = need().producer;
      tickets.ensureRoom(); // refuse before the record is queued
      // A send id already in the loaded outbox: queued by a host that is gone before it answered (SEND_ID_HEADER).
      const sendId = options.headers?.[SEND_ID_HEADER];
      if (sendId !== undefined && restored.delete(sendId)) {
        return { ok: tickets.issue(producer.drained().then(() => ({ topic, partition: -1, offset: -1 })), owner) };
      }
      const result = producer.send(topic, value, options);
      const ticket = tickets.issue(result, owner);
      try {
        await result.queued;
      } catch (e) {
        tickets.cancel(ticket);
        throw e;
      }
      return { ok: ticket };
    } catch (e) {
      return toRemoteError(e);
    }
  };
  /** `copy`: hand the tab plain copies (a port, or a user's own `expose`, clones only own data fields, not getters). */
  const subscribe = async (tabId: string, topic: string, deliver: (records: ConsumerRecord[]) => Promise<void>, options: SubscribeOptionsShared, copy: boolean): Promise<Result<number>> => {
    try {
      const sub = need().subscribeBatches(topic, (records) => deliver(copy ? records.map(plainRecord) : records), options);
      const id = nextId++;
      subscriptions.set(id, { tabId, sub, deliver });
      void sub.closed.catch(() => {}).finally(() => subscriptions.delete(id));
      return { ok: id };
    } catch (e) {
      return toRemoteError(e);
    }
  };
  const api: WorkerApi = {
    init(options) {
      // Once, whichever tab comes first; every tab's init waits for the same client.
      return (initializing ??= (async () => {
        const opening = indexedDbStorage({ name: options.databaseName ?? 'runnel' });
        const storage = await opening.catch(() => null);
        // NB: storage that cannot be opened or loaded is the client's to report (on connect, and to every send), as without this step.
        if (storage) restored = await sendIdsIn(storage.outbox).catch(() => new Set<string>());
        client = createClient({ ...options, storage: storage ?? opening, beacon: false });
        client.on('statechange', ({ state }) => {
          for (const [tabId, l] of stateListeners) Promise.resolve(l(state)).catch(() => releaseTab(tabId)).catch(() => {}); // a tab that is gone
        });
      })());
    },
    register(tabId, lockName) {
      // The tab holds `lockName` for its lifetime; we get it when the tab is gone (closed, crashed, navigated).
      (globalThis.navigator as Navigator | undefined)?.locks?.request(lockName, () => releaseTab(tabId)).catch(() => {}); // NB: nothing waits for it: never an unhandled rejection
    },
    unregister: releaseTab,
    send: (topic, value, options) => send(undefined, topic, value, options),
    async ack(ticket) {
      try {
        return { ok: await tickets.claim(ticket) };
      } catch (e) {
        return toRemoteError(e);
      }
    },
    subscribe: (tabId, topic, deliver, options) => subscribe(tabId, topic, deliver, options, true),
    async unsubscribe(id) {
      const s = subscriptions.get(id);
      subscriptions.delete(id);
      await s?.sub.unsubscribe();
      releaseCallback(s?.deliver);
    },
    state: () => client?.state ?? 'idle',
    onStateChange(tabId, listener) {
      stateListeners.set(tabId, listener);
    },
    outboxSize: () => need().producer.outboxSize,
    flush: () => need().producer.flush(),
    drained: () => need().producer.drained(),
    async shutdown() {
      const closing = client;
      client = null;
      for (const tabId of [...stateListeners.keys()]) await releaseTab(tabId);
      tickets.release(undefined, new RunnelError('NOT_CONNECTED', 'the worker host shut down; the records stay in the outbox'));
      await closing?.close();
    },
  };
  return {
    api,
    subscribeInPlace: (tabId, topic, deliver, options) => subscribe(tabId, topic, deliver, options, false),
    forPort() {
      const owner = {};
      return {
        ...api,
        send: (topic, value, options) => send(owner, topic, value, options),
        // The tab released its proxy (connectShared's close): nobody is left to collect its acknowledgments.
        [finalizer]: () => tickets.release(owner, new RunnelError('ABORTED', 'the tab closed its port')),
      };
    },
  };
}
