/**
 * Page side of @runnel/worker: `connectShared(options)` gives a tab the
 * client API backed by one SharedWorker for the whole origin; where
 * SharedWorker is missing (Chrome on Android) the tabs elect a leader tab
 * that hosts the client for all (leader-link.ts), without Web Locks a
 * dedicated Worker, and without workers an in-page host — same API either
 * way. The client itself (in-page host, leader host) is loaded with
 * `import()` only where it runs, so this side stays small. The tab holds a
 * Web Lock for its lifetime so the host releases its subscriptions when the
 * tab dies, and unregisters on `pagehide` as well.
 */
import type { Endpoint, Remote } from 'comlink';
import type { ConnectionState, ConsumerRecord, RecordMetadata, SendOptions, TopicRef } from '@runnel/client';
import { fail, runnelError } from './remote-error.ts';
import type { Result, SharedClientOptions, SubscribeOptionsShared, WorkerApi } from './worker-api.ts';

export interface ConnectSharedOptions extends SharedClientOptions {
  /** URL of the bundled worker script (worker/dist/runnel-worker.js). */
  workerUrl: string | URL;
  /** 'auto' (default): SharedWorker, else a leader tab (Web Locks + BroadcastChannel), else Worker, else in-page. */
  mode?: 'auto' | SharedClient['mode'];
  /** An already-connected comlink endpoint to a host (custom hosting, tests); overrides `mode`. */
  endpoint?: Endpoint;
}

export interface SharedSubscription { unsubscribe(): Promise<void> }

/** The client API a tab uses, whatever hosts the client. */
export interface SharedClient {
  readonly mode: 'shared' | 'leader' | 'dedicated' | 'page';
  /**
   * Resolves once acknowledged; `.queued` once in the (shared) outbox. Mode 'leader': when the leader tab
   * closes after `queued` and before the ack, the next leader resends the record and this resolves once its
   * outbox has drained, with `partition` and `offset` -1 (unknown); a send it had not answered is made again
   * at the next leader, once (its records carry a `runnel-send-id` header for that).
   */
  send<In>(topic: TopicRef<In, any>, value: In, options?: SendOptions): Promise<RecordMetadata> & { queued: Promise<void> };
  subscribe<T>(topic: TopicRef<any, T>, handler: (record: ConsumerRecord<T>) => void | Promise<void>, options?: SubscribeOptionsShared & { signal?: AbortSignal }): Promise<SharedSubscription>;
  state(): Promise<ConnectionState>;
  onStateChange(listener: (state: ConnectionState) => void): void;
  outboxSize(): Promise<{ records: number; bytes: number }>;
  flush(): Promise<void>;
  /** Releases this tab's subscriptions. */
  close(): Promise<void>;
}

async function unwrap<T>(result: Result<T>): Promise<T> {
  return 'ok' in result ? result.ok : fail(result.runnelError);
}

/**
 * The in-page host (the whole client, loaded with `import()`): one client for this tab alone, with the
 * API a worker exposes; expose it over a port yourself to host tabs elsewhere.
 */
export async function createHost(): Promise<WorkerApi> {
  return (await import('./worker-api.ts')).createHost();
}

type Comlink = typeof import('comlink');

/** The host for this tab's mode; each mode's code (comlink, leader-link, the client) is loaded only by tabs in that mode. */
async function open(options: ConnectSharedOptions, tabId: string): Promise<{ api: Remote<WorkerApi> | WorkerApi; mode: SharedClient['mode']; comlink?: Comlink }> {
  const mode = options.mode ?? 'auto';
  const g = globalThis as { SharedWorker?: typeof SharedWorker; Worker?: typeof Worker; BroadcastChannel?: unknown; navigator?: Navigator };
  const overComlink = async (endpoint: () => Endpoint, as: 'shared' | 'dedicated') => {
    const comlink = await import('comlink');
    return { api: comlink.wrap<WorkerApi>(endpoint()), mode: as, comlink };
  };
  if (options.endpoint) return overComlink(() => options.endpoint!, 'shared');
  if ((mode === 'auto' || mode === 'shared') && g.SharedWorker) {
    return overComlink(() => new g.SharedWorker!(options.workerUrl, { type: 'module', name: 'runnel' }).port, 'shared');
  }
  if ((mode === 'auto' || mode === 'leader') && g.navigator?.locks && g.BroadcastChannel) {
    return { api: (await import('./leader-link.ts')).leaderLink(options.databaseName ?? 'runnel', tabId), mode: 'leader' };
  }
  if ((mode === 'auto' || mode === 'dedicated') && g.Worker) {
    return overComlink(() => new g.Worker!(options.workerUrl, { type: 'module', name: 'runnel' }), 'dedicated');
  }
  return { api: await createHost(), mode: 'page' };
}

/**
 * @example
 * const runnel = await connectShared({ workerUrl: '/assets/runnel-worker.js', urls: [`wss://${location.host}/v1/ws`] });
 * await runnel.send(pageViews, { path: location.pathname }, { key: userId }).queued;
 * await runnel.subscribe('page-views', (rec) => render(rec.value), { consumerId: 'tab-dashboard' });
 */
export async function connectShared(options: ConnectSharedOptions): Promise<SharedClient> {
  const tabId = `${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}`;
  const { api, mode, comlink } = await open(options, tabId);
  // NB: the in-page and leader hosts take this tab's functions as they are; a worker's need comlink proxies.
  const wrapFn = <F extends object>(fn: F): F => (comlink ? comlink.proxy(fn) : fn);
  const { workerUrl: _url, mode: _mode, endpoint: _endpoint, token, ...rest } = options;
  await api.init({ ...rest, token: typeof token === 'function' ? wrapFn(token) : token });
  const lockName = `runnel-tab-${tabId}`;
  const locks = (globalThis.navigator as Navigator | undefined)?.locks;
  if (locks) {
    await new Promise<void>((held) => void locks.request(lockName, () => { held(); return new Promise(() => {}); }));
    await api.register(tabId, lockName);
  }
  // NB: a remote call rejects only when the host is gone, and then nothing is left to release: never an unhandled rejection.
  const quietly = (call: unknown): void => void Promise.resolve(call).catch(() => {});
  globalThis.addEventListener?.('pagehide', () => quietly(api.unregister(tabId)));
  return {
    mode,
    send(topicRef, value, sendOptions = {}) {
      const topic = typeof topicRef === 'string' ? { name: topicRef, schema: null } : topicRef;
      let markQueued!: (error?: unknown) => void;
      const queued = new Promise<void>((resolve, reject) => (markQueued = (e) => (e === undefined ? resolve() : reject(e))));
      queued.catch(() => {});
      const acked = (async () => {
        let ticket: number;
        try {
          if (topic.schema) {
            try { topic.schema.parse(value); } catch (cause) { throw await runnelError('SCHEMA_VALIDATION_FAILED', `value for topic "${topic.name}" does not match its schema`, cause); }
          }
          ticket = await unwrap(await api.send(topic.name, value, sendOptions));
        } catch (error) {
          markQueued(error);
          throw error;
        }
        markQueued();
        return unwrap(await api.ack(ticket));
      })();
      const result = acked as Promise<RecordMetadata> & { queued: Promise<void> };
      result.queued = queued;
      return result;
    },
    async subscribe(topicRef, handler, subscribeOptions = {}) {
      const { signal, ...rest } = subscribeOptions;
      const topic = typeof topicRef === 'string' ? topicRef : topicRef.name;
      const deliver = wrapFn(async (records: ConsumerRecord[]) => {
        for (const r of records) await handler(r as ConsumerRecord<any>);
      });
      const id = await unwrap(await api.subscribe(tabId, topic, deliver, rest));
      const subscription = { unsubscribe: () => api.unsubscribe(id) };
      signal?.addEventListener('abort', () => quietly(subscription.unsubscribe()), { once: true });
      return subscription;
    },
    state: async () => api.state(),
    onStateChange: (listener) => quietly(api.onStateChange(tabId, wrapFn(listener))),
    outboxSize: async () => api.outboxSize(),
    flush: async () => api.flush(),
    async close() {
      await api.unregister(tabId);
      // Releasing the remote closes its MessagePort (and the host releases this tab's callbacks).
      if (comlink) (api as Remote<WorkerApi>)[comlink.releaseProxy]();
      else await api.shutdown(); // the in-page client belongs to this tab alone; a leader hands over to the next tab
    },
  };
}
