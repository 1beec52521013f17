/**
 * Keeps a `ClusterCache` in step with etcd: one watch over the whole
 * cluster prefix, so changes to topics, partitions, brokers and the
 * controller election arrive in one revision order.
 *
 * Invariant: listeners see every change once, in revision order. A watch
 * stream that breaks (etcd restarted, the connection dropped, a compacted
 * start revision) is not resumed: the watch reloads everything as of one
 * revision, reports the differences (`ClusterCache.replace`), and watches
 * again from the next revision; a stream from before the reload is ignored
 * (generation counter).
 */
import type { IKeyValue, IWatchResponse, Watcher } from 'etcd3';
import type { TopicInfo } from '../metadata/topic-info.ts';
import type { BrokerEndpoint, VersionedLeadership } from './cluster-state.ts';
import { ClusterCache, type CacheUpdate, type KeyEvent } from './cluster-cache.ts';
import type { EtcdConnection } from './etcd-connection.ts';

/** What changed, in etcd revision order (cluster-cache.ts "Ordering contract"). Every method is optional. */
export interface ClusterListener {
  /** The full topic list, sorted by name, after any topic change. */
  topicsChanged?(topics: TopicInfo[]): void;
  leadershipChanged?(leadership: VersionedLeadership): void;
  leadershipRemoved?(topicId: string, partition: number): void;
  /** The full live broker list, sorted by id, after any change. */
  brokersChanged?(brokers: BrokerEndpoint[]): void;
  /** The elected campaign changed (the broker id can be the same: a controller that re-campaigned). */
  controllerChanged?(controller: number | null): void;
  /** After a full reload (start, watch reconnect): the notices of the differences came before this. */
  resynced?(revision: string): void;
  connectivityChanged?(connected: boolean): void;
}

export interface ClusterWatchLimits {
  /** Resync backoff after a broken stream: first delay, doubling up to the max while etcd stays unreachable. */
  watchResyncMinDelayMs: number;
  watchResyncMaxDelayMs: number;
}

export const defaultClusterWatchLimits: ClusterWatchLimits = {
  watchResyncMinDelayMs: 50,
  watchResyncMaxDelayMs: 2_000,
};

export function toKeyEvent(kv: IKeyValue, type: 'put' | 'delete', prefixLength: number): KeyEvent {
  return {
    type, key: kv.key.toString().slice(prefixLength), value: type === 'put' ? kv.value.toString() : '',
    modRevision: kv.mod_revision, createRevision: kv.create_revision,
  };
}

export class ClusterWatch {
  readonly cache = new ClusterCache();
  private readonly listeners = new Set<ClusterListener>();
  private watcher: Watcher | undefined;
  private generation = 0;
  private resyncTimer: NodeJS.Timeout | undefined;
  private resyncDelayMs: number;
  private isClosed = false;
  private readonly unsubscribeConnectivity: () => void;
  private readonly unhookClose: () => void;

  constructor(
    private readonly connection: EtcdConnection,
    private readonly limits: ClusterWatchLimits,
    private readonly onInvalidValue: (key: string, problem: string) => void,
  ) {
    this.resyncDelayMs = limits.watchResyncMinDelayMs;
    this.unsubscribeConnectivity = connection.onConnectivityChange((connected) => {
      for (const l of [...this.listeners]) l.connectivityChanged?.(connected);
    });
    // A connection closed under the watch (a crash test, a shared connection's owner) stops it too.
    this.unhookClose = connection.onClose(() => this.stop());
  }

  /** The first load; CLUSTER_UNAVAILABLE when etcd cannot be reached. */
  start(): Promise<void> {
    return this.reload();
  }

  subscribe(listener: ClusterListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  close(): void {
    if (this.isClosed) return;
    this.isClosed = true;
    this.unsubscribeConnectivity();
    this.unhookClose();
    this.stop();
    this.listeners.clear();
  }

  private stop(): void {
    this.generation++;
    clearTimeout(this.resyncTimer);
    this.cancelWatcher();
  }

  /** Loads everything as of one revision, reports the differences, then watches from the next revision. */
  private async reload(): Promise<void> {
    const generation = ++this.generation;
    this.cancelWatcher();
    const prefix = this.connection.key('');
    const response = await this.connection.run('load cluster state', () => this.connection.client.getAll().prefix(prefix).exec());
    if (generation !== this.generation || this.isClosed) return;
    const puts = response.kvs.map((kv) => toKeyEvent(kv, 'put', prefix.length));
    this.dispatch(this.cache.replace(puts, response.header.revision));
    for (const l of [...this.listeners]) l.resynced?.(response.header.revision);
    this.startWatcher(generation, (BigInt(response.header.revision) + 1n).toString());
  }

  private startWatcher(generation: number, fromRevision: string): void {
    const prefix = this.connection.key('');
    const watcher = this.connection.client.watch().prefix(prefix).startRevision(fromRevision).watcher();
    this.watcher = watcher;
    watcher.on('data', (response: IWatchResponse) => {
      if (generation !== this.generation || response.events.length === 0) return;
      this.resyncDelayMs = this.limits.watchResyncMinDelayMs;
      const events = response.events.map((e) => toKeyEvent(e.kv, e.type === 'Delete' ? 'delete' : 'put', prefix.length));
      this.dispatch(this.cache.apply(events, response.header.revision));
    });
    const broken = () => {
      if (generation !== this.generation) return;
      this.connection.markUnavailable();
      this.scheduleResync(generation);
    };
    watcher.on('disconnected', broken);
    watcher.on('error', broken);
  }

  private scheduleResync(generation: number): void {
    if (this.isClosed || this.connection.closed || generation !== this.generation) return;
    this.generation++;
    this.cancelWatcher();
    const delayMs = this.resyncDelayMs;
    this.resyncDelayMs = Math.min(this.limits.watchResyncMaxDelayMs, this.resyncDelayMs * 2);
    this.resyncTimer = setTimeout(() => {
      // A failed reload (etcd still down) tries again, later.
      this.reload().catch(() => this.scheduleResync(this.generation));
    }, delayMs);
  }

  private cancelWatcher(): void {
    const watcher = this.watcher;
    this.watcher = undefined;
    // NB: cancel() waits for etcd's answer when connected; nothing needs it, and it must not throw into a closed client.
    watcher?.removeAllListeners().on('error', () => undefined);
    watcher?.cancel().catch(() => undefined);
  }

  private dispatch(update: CacheUpdate): void {
    for (const p of update.problems) this.onInvalidValue(p.key, p.problem);
    for (const notice of update.notices) {
      for (const l of [...this.listeners]) {
        switch (notice.type) {
          case 'topics': l.topicsChanged?.(this.cache.topics()); break;
          case 'leadership': l.leadershipChanged?.(notice.leadership); break;
          case 'leadership-removed': l.leadershipRemoved?.(notice.topicId, notice.partition); break;
          case 'brokers': l.brokersChanged?.(this.cache.brokers()); break;
          case 'controller': l.controllerChanged?.(notice.controller); break;
        }
      }
    }
  }
}
