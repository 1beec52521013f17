/**
 * Leader-tab mode, a tab's side (no SharedWorker: Chrome on Android). The
 * tabs of an origin elect one leader with a Web Lock (`runnel-leader:<db>`,
 * queued by every tab: the next in the queue takes over when the leader
 * closes or crashes); the leader hosts the one client (leader-host.ts,
 * loaded only when elected) and the other tabs call it over a
 * BroadcastChannel (tab-messages.ts). This side presents the host's API
 * (WorkerApi) whichever tab leads, and across a change of leader:
 * - consuming: offsets are stored by the leader after a batch's handler
 *   finished, so a new leader resumes at or before what this tab handled
 *   (no gap); this tab drops what it has handled already (per subscription
 *   and partition: the next offset it expects), and runs one batch of a
 *   subscription at a time, so there is no duplicate at the handler either;
 * - producing: a record whose `queued` resolved is in the IndexedDB outbox,
 *   which the next leader loads and resends under the same producer id and
 *   sequences (the broker drops what was written already). Its pending ack
 *   resolves once the new leader's outbox has drained, with `partition` and
 *   `offset` -1 (known only to the leader that is gone; Kafka's
 *   RecordMetadata for an unknown offset). A send the old leader had not
 *   answered is made again at the new one with the same send id
 *   (SEND_ID_HEADER): queued already, it is not queued twice.
 * - everything else (register, subscribe, state listener, pending calls) is
 *   made again at the new leader.
 */
import type { ConnectionState, ConsumerRecord, RecordMetadata } from '@runnel/client';
import type { LocalTab, TabServer } from './leader-host.ts';
import { runnelError } from './remote-error.ts';
import { SEND_ID_HEADER, type TabMessage, type TabMethod } from './tab-messages.ts';
import type { RemoteError, Result, SharedClientOptions, SubscribeOptionsShared, WorkerApi } from './worker-api.ts';

type Failure = RemoteError['runnelError'];
type Deliver = (records: ConsumerRecord[]) => Promise<void>;
interface Sub { topic: string; deliver: Deliver; options: SubscribeOptionsShared; tabId: string; remote?: number; pending?: boolean; next: Map<number, number>; chain: Promise<void> }
interface Call { method: TabMethod; args: unknown[]; to: string | null; resolve(value: unknown): void; reject(error: unknown): void }

/** Held by each tab in leader mode for its lifetime. */
const alive = (tabId: string): string => `runnel-tab-alive:${tabId}`;
const CLOSED: Failure = { errorName: 'NOT_CONNECTED', message: 'this tab closed its Runnel client' };

/** The host API of whichever tab leads; `name` scopes the election and channel (the database name). */
export function leaderLink(name: string, tabId: string): WorkerApi {
  const channelName = `runnel-tabs:${name}`;
  const channel = new BroadcastChannel(channelName);
  const calls = new Map<number, Call>();
  const subs = new Map<number, Sub>();
  /** Tickets of this tab: the leader that issued each, its ticket there, the topic. */
  const tickets = new Map<number, [leader: string, remote: number, topic: string]>();
  const abort = new AbortController();
  let leader: string | null = null, server: TabServer | null = null, options: SharedClientOptions;
  let registered: unknown[] | null = null, stateListener: ((state: ConnectionState) => void) | null = null;
  let nextId = 1, closed = false;
  let led!: () => void, failed!: (error: unknown) => void;
  const known = new Promise<void>((resolve, reject) => { led = resolve; failed = reject; });
  known.catch(() => {}); // NB: init awaits it; a failed election after that has no one to tell

  const post = (m: TabMessage): void => channel.postMessage(m);
  const dispatch = (id: number, c: Call): void => {
    c.to = leader;
    if (leader === tabId) server!.call(tabId, c.method, c.args).then((v) => settle(id, v), (e) => settle(id, undefined, e));
    else if (leader) post({ t: 'call', to: leader, from: tabId, id, method: c.method, args: c.args });
  };
  /** Ends call `id` with its value, or with `error`: thrown by the local host, or a remote one's payload. */
  const settle = (id: number, value: unknown, error?: unknown): void => {
    const c = calls.get(id);
    if (!c) return;
    calls.delete(id);
    if (error === undefined) c.resolve(value);
    else if (error instanceof Error) c.reject(error);
    else void runnelError((error as Failure).errorName, (error as Failure).message).then(c.reject);
  };
  /** Calls `method` on the leader; `answered.to` is then the leader that answered (a ticket is only valid there). */
  const callAt = <T>(answered: { to?: string | null }, method: TabMethod, ...args: unknown[]): Promise<T> => new Promise((resolve, reject) => {
    if (closed) return void runnelError(CLOSED.errorName, CLOSED.message).then(reject);
    const id = nextId++;
    const c: Call = { method, args, to: null, resolve: (v) => { answered.to = c.to; resolve(v as T); }, reject };
    calls.set(id, c);
    dispatch(id, c);
  });
  const call = <T>(method: TabMethod, ...args: unknown[]): Promise<T> => callAt<T>({}, method, ...args);
  const subscribeAt = async (id: number, s: Sub): Promise<Result<number>> => {
    s.pending = true;
    try {
      const r = await call<Result<number>>('subscribe', s.tabId, s.topic, id, s.options);
      if ('ok' in r) s.remote = r.ok;
      return r;
    } finally {
      s.pending = false;
    }
  };

  const setLeader = (id: string): void => {
    if (leader === id || closed) return;
    leader = id;
    // Granted when that tab is gone: from then on calls wait for the next leader instead of going nowhere
    // (the ones posted before are made again there, below).
    if (id !== tabId) void navigator.locks.request(alive(id), () => { if (leader === id) leader = null; }).catch(() => {});
    const pending = [...calls];
    // Again at the new leader, in this order (the channel keeps it): who we are, what we read, what we watch.
    if (registered) void call('register', ...registered).catch(() => {});
    // NB: a subscription the new leader refuses (one the old one accepted) just stops; it has no one to tell.
    for (const [sid, s] of subs) if (!s.pending) void subscribeAt(sid, s).catch(() => {});
    if (stateListener) void call('onStateChange', tabId).catch(() => {});
    for (const [cid, c] of pending) {
      if (c.to === null) dispatch(cid, c);
      // A ticket belongs to the leader that issued it (ack: takeover path). A send is made again: its id tells
      // the new leader whether the old one had queued it already (SEND_ID_HEADER).
      else if (c.method === 'ack') settle(cid, null);
      else if (c.method === 'register' || c.method === 'onStateChange') settle(cid, undefined); // made again above
      else if (c.method === 'unsubscribe') settle(cid, undefined); // the old leader's subscription went with it
      else dispatch(cid, c);
    }
    led();
  };

  /** A batch for subscription `sid` (from the leader's host, local or over the channel), after the one before it. */
  const onDeliver = (sid: number, records: ConsumerRecord[]): Promise<void> => {
    const s = subs.get(sid);
    if (!s) return Promise.reject({ errorName: 'ABORTED', message: 'unsubscribed' } satisfies Failure);
    const run = s.chain.then(async () => {
      const fresh = records.filter((r) => r.offset >= (s.next.get(r.partition) ?? 0));
      if (fresh.length > 0) await s.deliver(fresh);
      for (const r of fresh) s.next.set(r.partition, r.offset + 1);
    });
    s.chain = run.catch(() => {});
    return run;
  };
  const local: LocalTab = { deliver: onDeliver, state: (state) => stateListener?.(state) };

  channel.onmessage = ({ data: m }: MessageEvent<TabMessage>) => {
    if (m.t === 'leader') return setLeader(m.from);
    if (m.t === 'leaving') { if (leader === m.from) leader = null; return; }
    if (m.t === 'hello' || m.to !== tabId) return;
    if (m.t === 'reply') settle(m.id, m.ok, m.error);
    else if (m.t === 'state') stateListener?.(m.state);
    else if (m.t === 'deliver') {
      const done = (error?: unknown): void => post({ t: 'delivered', to: m.from, from: tabId, n: m.n, error: error === undefined ? undefined : { errorName: (error as Failure).errorName ?? 'UNKNOWN_SERVER_ERROR', message: String((error as Error)?.message ?? error) } });
      onDeliver(m.sub, m.records).then(() => done(), done);
    }
  };

  const elect = (): void => {
    navigator.locks.request(`runnel-leader:${name}`, { signal: abort.signal }, async () => {
      try {
        const { serveTabs } = await import('./leader-host.ts');
        server = await serveTabs({ channelName, leaderId: tabId, client: options, local });
      } catch (error) {
        failed(error); // NB: the lock goes to the next tab; this one stays a follower
        return;
      }
      setLeader(tabId);
      await new Promise((release) => abort.signal.addEventListener('abort', release));
      await server.close();
    }).catch(() => {}); // aborted: closed while queued
  };

  return {
    async init(o) {
      options = o;
      // This tab's lifetime lock first: followers wait on it to learn that this tab is gone.
      await new Promise<void>((held) => void navigator.locks.request(alive(tabId), { signal: abort.signal }, () => {
        held();
        return new Promise((release) => abort.signal.addEventListener('abort', release));
      }).catch(() => {}));
      elect();
      post({ t: 'hello', from: tabId });
      await known;
    },
    register(...args) {
      registered = args;
      void call('register', ...args).catch(() => {});
    },
    unregister: () => call('unregister', tabId),
    async send(topic, value, sendOptions) {
      const answered: { to?: string | null } = {};
      const headers = { ...sendOptions.headers, [SEND_ID_HEADER]: `${tabId}:${nextId++}` };
      const r = await callAt<Result<number>>(answered, 'send', topic, value, { ...sendOptions, headers });
      if (!('ok' in r)) return r;
      const id = nextId++;
      tickets.set(id, [answered.to!, r.ok, topic]);
      return { ok: id };
    },
    async ack(ticket) {
      const t = tickets.get(ticket);
      if (!t) return { runnelError: { errorName: 'INVALID_REQUEST', message: `unknown ticket ${ticket}` } };
      const [from, remote, topic] = t;
      try {
        const r = from === leader ? await call<Result<RecordMetadata> | null>('ack', remote) : null;
        if (r) return r;
        await call('drained'); // the leader that took it over has resent (or failed) everything it loaded
        return { ok: { topic, partition: -1, offset: -1 } };
      } finally {
        tickets.delete(ticket);
      }
    },
    async subscribe(subTabId, topic, deliver, subscribeOptions) {
      const id = nextId++;
      const s: Sub = { topic, deliver, options: subscribeOptions, tabId: subTabId, next: new Map(), chain: Promise.resolve() };
      subs.set(id, s);
      const r = await subscribeAt(id, s);
      if (!('ok' in r)) subs.delete(id);
      return 'ok' in r ? { ok: id } : r;
    },
    async unsubscribe(id) {
      const s = subs.get(id);
      subs.delete(id);
      if (s?.remote !== undefined) await call('unsubscribe', s.remote);
    },
    state: () => call('state') as never,
    onStateChange(_tabId, listener) {
      stateListener = listener;
      void call('onStateChange', tabId).catch(() => {});
    },
    outboxSize: () => call('outboxSize') as never,
    flush: () => call('flush'),
    drained: () => call('drained'),
    async shutdown() {
      closed = true;
      abort.abort(); // a leader closes its client and releases the lock: the next tab takes over
      for (const id of [...calls.keys()]) settle(id, undefined, CLOSED);
      channel.close();
    },
  };
}
