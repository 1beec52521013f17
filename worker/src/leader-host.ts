/**
 * The elected tab's side of leader-tab mode (loaded by leader-link.ts only
 * once this tab wins the election, so followers never load the client): the
 * in-page host (worker-api.ts: one client, one WebSocket, the IndexedDB
 * outbox) serving the other tabs' calls from the BroadcastChannel, each
 * tab through its own view (its tickets are released with it). A tab's
 * subscriptions and tickets are released when its Web Lock comes free
 * (closed, crashed, navigated) or it unregisters.
 */
import { finalizer } from 'comlink';
import { RunnelError, type ConnectionState, type ConsumerRecord } from '@runnel/client';
import { defaultHostLimits } from './limits.ts';
import type { TabMessage, TabMethod } from './tab-messages.ts';
import { createPortHost, toRemoteError, type SharedClientOptions, type WorkerApi } from './worker-api.ts';

/** How long a new leader waits for the previous leader's outbox slot to come free (it normally is already). */
const PREVIOUS_LEADER_WAIT_MS = 5_000;

/** What the leader's own tab gets directly, not over the channel. */
export interface LocalTab {
  deliver(subscription: number, records: ConsumerRecord[]): Promise<void>;
  state(state: ConnectionState): void;
}

export interface TabServer {
  /** Runs one call of tab `from` (the leader's own tab calls it directly). */
  call(from: string, method: TabMethod, args: unknown[]): Promise<unknown>;
  /** Stops serving and closes the client (its outbox stays stored for the next leader). */
  close(): Promise<void>;
}

/** Starts the host and serves the tabs on `channelName` as leader `leaderId`; announces itself once ready. */
export async function serveTabs(options: { channelName: string; leaderId: string; client: SharedClientOptions; local: LocalTab }): Promise<TabServer> {
  const { leaderId, local } = options;
  // The leader before this one (closed or crashed) held outbox slot 0 of the database; wait until it is free so
  // this client loads that outbox as its own and knows its send ids (SEND_ID_HEADER). Bounded: another client
  // holding slot 0 for good (a tab in another mode) only costs the wait; this client then takes the next slot.
  // NB: the lock name is indexeddb-outbox.ts's.
  const slot0 = `runnel-outbox:${options.client.databaseName ?? 'runnel'}:0`;
  await navigator.locks.request(slot0, { signal: AbortSignal.timeout(PREVIOUS_LEADER_WAIT_MS) }, () => {}).catch(() => {});
  const host = createPortHost();
  await host.api.init(options.client);
  const channel = new BroadcastChannel(options.channelName);
  const post = (m: TabMessage): void => channel.postMessage(m);
  const views = new Map<string, ReturnType<typeof host.forPort>>();
  /** Batches posted to followers and not yet handled, by number (at most one per subscription). */
  const delivering = new Map<number, { to: string; resolve(): void; reject(e: unknown): void }>();
  let nextDelivery = 1;
  let closed = false;

  const view = (tab: string): ReturnType<typeof host.forPort> => {
    let v = views.get(tab);
    if (!v) views.set(tab, (v = host.forPort()));
    return v;
  };
  const releaseTab = async (tab: string): Promise<void> => {
    const v = views.get(tab);
    if (!v) return;
    views.delete(tab);
    // NB: first, so an unsubscribe does not wait for a handler that is gone.
    for (const [n, d] of delivering) if (d.to === tab) { delivering.delete(n); d.reject(new RunnelError('ABORTED', 'the tab is gone')); }
    v[finalizer]();
    await v.unregister(tab);
  };
  const deliverTo = (tab: string, subscription: number) => (records: ConsumerRecord[]): Promise<void> => {
    if (tab === leaderId) return local.deliver(subscription, records);
    return new Promise((resolve, reject) => {
      const n = nextDelivery++;
      delivering.set(n, { to: tab, resolve, reject });
      post({ t: 'deliver', to: tab, from: leaderId, sub: subscription, n, records });
    });
  };
  const call = async (from: string, method: TabMethod, args: unknown[]): Promise<unknown> => {
    if (closed) throw new RunnelError('NOT_CONNECTED', 'the leader tab is closing');
    const v = view(from);
    switch (method) {
      case 'register': {
        // The tab holds this lock for its lifetime: granted to us when it is gone.
        const [, lockName] = args as [string, string];
        if (from !== leaderId) void navigator.locks.request(lockName, () => releaseTab(from)).catch(() => {}); // NB: nothing waits for it
        return;
      }
      case 'unregister': return releaseTab(from);
      case 'subscribe': {
        const [tabId, topic, subscription, subscribeOptions] = args as [string, string, number, Parameters<WorkerApi['subscribe']>[3]];
        // NB: the leader's own tab gets the records as the client made them; the others plain copies (the channel clones).
        return (from === leaderId ? host.subscribeInPlace : v.subscribe)(tabId, topic, deliverTo(from, subscription), subscribeOptions);
      }
      case 'onStateChange':
        return v.onStateChange(args[0] as string, from === leaderId ? local.state : (state) => post({ t: 'state', to: from, state }));
      case 'drained': {
        // Bounded like a ticket: a follower waiting on it is answered REQUEST_TIMED_OUT rather than never.
        let timer: ReturnType<typeof setTimeout> | undefined;
        const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new RunnelError('REQUEST_TIMED_OUT', 'the outbox did not drain within ticketTimeoutMs')), defaultHostLimits.ticketTimeoutMs)));
        return Promise.race([v.drained(), late]).finally(() => clearTimeout(timer));
      }
      case 'send': case 'ack': case 'unsubscribe': case 'state': case 'outboxSize': case 'flush':
        return (v[method] as (...a: unknown[]) => unknown)(...args);
      default:
        throw new RunnelError('INVALID_REQUEST', `unknown method ${String(method)}`);
    }
  };

  channel.onmessage = ({ data: m }: MessageEvent<TabMessage>) => {
    if (closed) return;
    if (m.t === 'hello') return post({ t: 'leader', from: leaderId });
    if (!('to' in m) || m.to !== leaderId) return;
    if (m.t === 'call') {
      call(m.from, m.method, m.args).then(
        (ok) => post({ t: 'reply', to: m.from, id: m.id, ok }),
        (error) => post({ t: 'reply', to: m.from, id: m.id, error: toRemoteError(error).runnelError }),
      );
    } else if (m.t === 'delivered') {
      const d = delivering.get(m.n);
      if (!d || d.to !== m.from) return;
      delivering.delete(m.n);
      if (m.error) d.reject(new RunnelError(m.error.errorName as never, m.error.message));
      else d.resolve();
    }
  };
  const leaving = (): void => post({ t: 'leaving', from: leaderId });
  addEventListener('pagehide', leaving);
  post({ t: 'leader', from: leaderId });

  return {
    call,
    async close() {
      closed = true;
      removeEventListener('pagehide', leaving);
      for (const d of delivering.values()) d.reject(new RunnelError('ABORTED', 'the leader tab is closing'));
      delivering.clear();
      channel.close();
      await host.api.shutdown();
    },
  };
}
