/**
 * Page side of @runnel/worker: `connectShared(options)` gives a tab the
 * client API backed by one SharedWorker for the whole origin; where
 * SharedWorker is missing it uses a dedicated Worker, and without workers an
 * in-page host — same API either way. The tab holds a Web Lock for its
 * lifetime so the host releases its subscriptions when the tab dies, and
 * unregisters on `pagehide` as well.
 */
import { proxy, releaseProxy, wrap, type Endpoint, type Remote } from 'comlink';
import { RunnelError, type ConnectionState, type ConsumerRecord, type ErrorName, type RecordMetadata, type SendOptions, type TopicRef } from '@runnel/client';
import { createHost, type Result, type SharedClientOptions, type SubscribeOptionsShared, type WorkerApi } from './worker-api.ts';

export interface ConnectSharedOptions extends SharedClientOptions {
  /** URL of the bundled worker script (worker/dist/runnel-worker.js). */
  workerUrl: string | URL;
  /** 'auto' (default): SharedWorker, else Worker, else in-page. */
  mode?: 'auto' | 'shared' | 'dedicated' | 'page';
  /** An already-connected comlink endpoint to a host (custom hosting, tests); overrides `mode`. */
  endpoint?: Endpoint;
}

export interface SharedSubscription { unsubscribe(): Promise<void> }

/** The client API a tab uses, whatever hosts the client. */
export interface SharedClient {
  readonly mode: 'shared' | 'dedicated' | 'page';
  /** Resolves once acknowledged; `.queued` once in the (shared) outbox. */
  send<In>(topic: TopicRef<In, any>, value: In, options?: SendOptions): Promise<RecordMetadata> & { queued: Promise<void> };
  subscribe<T>(topic: TopicRef<any, T>, handler: (record: ConsumerRecord<T>) => void | Promise<void>, options?: SubscribeOptionsShared & { signal?: AbortSignal }): Promise<SharedSubscription>;
  state(): Promise<ConnectionState>;
  onStateChange(listener: (state: ConnectionState) => void): void;
  outboxSize(): Promise<{ records: number; bytes: number }>;
  flush(): Promise<void>;
  /** Releases this tab's subscriptions. */
  close(): Promise<void>;
}

function unwrap<T>(result: Result<T>): T {
  if ('ok' in result) return result.ok;
  throw new RunnelError(result.runnelError.errorName as ErrorName, result.runnelError.message);
}

function open(options: ConnectSharedOptions): { api: Remote<WorkerApi> | WorkerApi; mode: SharedClient['mode'] } {
  if (options.endpoint) return { api: wrap<WorkerApi>(options.endpoint), mode: 'shared' };
  const mode = options.mode ?? 'auto';
  const g = globalThis as { SharedWorker?: typeof SharedWorker; Worker?: typeof Worker };
  if ((mode === 'auto' || mode === 'shared') && g.SharedWorker) {
    const worker = new g.SharedWorker(options.workerUrl, { type: 'module', name: 'runnel' });
    return { api: wrap<WorkerApi>(worker.port), mode: 'shared' };
  }
  if ((mode === 'auto' || mode === 'dedicated') && g.Worker) {
    return { api: wrap<WorkerApi>(new g.Worker(options.workerUrl, { type: 'module', name: 'runnel' })), mode: 'dedicated' };
  }
  return { api: createHost(), mode: 'page' };
}

/**
 * @example
 * const runnel = await connectShared({ workerUrl: '/assets/runnel-worker.js', urls: [`wss://${location.host}/v1/ws`] });
 * await runnel.send(pageViews, { path: location.pathname }, { key: userId }).queued;
 * await runnel.subscribe('page-views', (rec) => render(rec.value), { consumerId: 'tab-dashboard' });
 */
export async function connectShared(options: ConnectSharedOptions): Promise<SharedClient> {
  const { api, mode } = open(options);
  const isRemote = mode !== 'page';
  const wrapFn = <F extends object>(fn: F): F => (isRemote ? proxy(fn) : fn);
  const { workerUrl: _url, mode: _mode, endpoint: _endpoint, token, ...rest } = options;
  await api.init({ ...rest, token: typeof token === 'function' ? wrapFn(token) : token });
  const tabId = `${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}`;
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
            try { topic.schema.parse(value); } catch (cause) { throw new RunnelError('SCHEMA_VALIDATION_FAILED', `value for topic "${topic.name}" does not match its schema`, { cause }); }
          }
          ticket = unwrap(await api.send(topic.name, value, sendOptions));
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
      const id = unwrap(await api.subscribe(tabId, topic, deliver, rest));
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
      if (isRemote) (api as Remote<WorkerApi>)[releaseProxy]();
      else await api.shutdown(); // the in-page client belongs to this tab alone
    },
  };
}
