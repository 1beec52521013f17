/**
 * Stream state of a cluster (stream-store.ts): one etcd key per stream path,
 * `<prefix>.streams/<sha256(path)>`, holding the stream's JSON state, so
 * every broker serves every stream URL from the same state.
 *
 * - `commit` is one etcd transaction: a create compares the key's create
 *   revision with 0, an update or remove its mod revision with the one read;
 *   all puts and deletes apply together or not at all, answered only once
 *   etcd has committed them (etcd's durability).
 * - The cache (stream-cache.ts) takes this broker's commits at once and every
 *   broker's from a watch over the namespace, in revision order. A broken
 *   watch stream is not resumed: the store reloads the namespace as of one
 *   revision, reports the differences and watches from the next revision, as
 *   cluster-watch.ts does for topics.
 *
 * The namespace is a sibling of the cluster prefix, not under it: the cluster
 * watch loads and watches everything under `<prefix>/` and has no use for up
 * to MAX_STREAMS stream values.
 */
import { createHash } from 'node:crypto';
import type { ComparatorBuilder, IKeyValue, IWatchResponse, Watcher } from 'etcd3';
import { assert } from '@runnel/client/codec';
import type { EtcdConnection } from '../cluster/etcd-connection.ts';
import { StreamCache, type CachedChange } from './stream-cache.ts';
import { decodeStreamMeta, encodeStreamMeta, type StoredStream, type StreamChange, type StreamChangeListener, type StreamMeta, type StreamStore } from './stream-store.ts';

export interface EtcdStreamStoreLimits {
  /** Resync backoff after a broken watch stream: first delay, doubling up to the max while etcd stays unreachable. */
  watchResyncMinDelayMs: number;
  watchResyncMaxDelayMs: number;
}

export const defaultEtcdStreamStoreLimits: EtcdStreamStoreLimits = { watchResyncMinDelayMs: 50, watchResyncMaxDelayMs: 2_000 };

export class EtcdStreamStore implements StreamStore {
  readonly isShared = true;
  private readonly cache = new StreamCache();
  private readonly listeners = new Set<StreamChangeListener>();
  private readonly namespace: string;
  /** Key → path of every cached stream: a delete event carries only the key. */
  private readonly pathByKey = new Map<string, string>();
  private watcher: Watcher | undefined;
  private generation = 0;
  private resyncTimer: NodeJS.Timeout | undefined;
  private resyncDelayMs: number;
  private isClosed = false;
  private readonly unhookClose: () => void;

  private constructor(
    private readonly connection: EtcdConnection,
    private readonly limits: EtcdStreamStoreLimits,
    private readonly warn: (line: string) => void,
  ) {
    this.namespace = `${connection.prefix}.streams/`;
    this.resyncDelayMs = limits.watchResyncMinDelayMs;
    this.unhookClose = connection.onClose(() => this.stop());
  }

  /**
   * Loads every stream state and starts watching. CLUSTER_UNAVAILABLE when etcd cannot be reached.
   * @example
   * const streams = await EtcdStreamStore.open(clusterStore.connection);
   */
  static async open(connection: EtcdConnection, options: { limits?: Partial<EtcdStreamStoreLimits>; warn?: (line: string) => void } = {}): Promise<EtcdStreamStore> {
    const limits = { ...defaultEtcdStreamStoreLimits, ...options.limits };
    if (!(limits.watchResyncMinDelayMs > 0 && limits.watchResyncMinDelayMs <= limits.watchResyncMaxDelayMs)) {
      throw new RangeError('watchResyncMinDelayMs must be positive and at most watchResyncMaxDelayMs');
    }
    const store = new EtcdStreamStore(connection, limits, options.warn ?? ((line) => console.warn(line)));
    try {
      await store.reload();
    } catch (e) {
      await store.close();
      throw e;
    }
    return store;
  }

  get size(): number {
    return this.cache.size;
  }

  get(path: string): StoredStream | undefined {
    return this.cache.get(path);
  }

  softDeletedAt(path: string): StoredStream | undefined {
    return this.cache.softDeletedAt(path);
  }

  byId(incarnation: string): StoredStream | undefined {
    return this.cache.byId(incarnation);
  }

  onChange(listener: StreamChangeListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  async commit(changes: readonly StreamChange[]): Promise<boolean> {
    assert(changes.length > 0, 'a commit changes at least one stream');
    const paths = changes.map((c) => (c.type === 'create' ? c.meta.path : c.expected.path));
    assert(new Set(paths).size === paths.length, 'a commit touches each stream path once');
    const client = this.connection.client;
    let txn: ComparatorBuilder | undefined;
    const compare = (key: string, column: 'Create' | 'Mod', value: string | number) => {
      txn = txn === undefined ? client.if(key, column, '==', value) : txn.and(key, column, '==', value);
    };
    const ops = changes.map((c) => {
      if (c.type === 'update') assert(c.next.path === c.expected.path && c.next.incarnation === c.expected.incarnation, 'an update keeps the path and incarnation');
      const key = this.keyOf(c.type === 'create' ? c.meta.path : c.expected.path);
      if (c.type === 'create') compare(key, 'Create', 0);
      else compare(key, 'Mod', c.expected.revision);
      return c.type === 'remove' ? client.delete().key(key) : client.put(key).value(encodeStreamMeta(c.type === 'create' ? c.meta : c.next));
    });
    const result = await this.connection.run(`commit stream ${paths[0].slice(0, 100)}`, () => txn!.then(...ops).commit());
    if (!result.succeeded) return false;
    const revision = result.header.revision;
    for (const c of changes) {
      this.emit(c.type === 'remove' ? this.cache.delete(c.expected.path, revision) : this.cache.put(c.type === 'create' ? c.meta : c.next, revision));
    }
    return true;
  }

  async refresh(path: string): Promise<StoredStream | undefined> {
    const result = await this.connection.run(`read stream ${path.slice(0, 100)}`, () => this.connection.client.get(this.keyOf(path)).exec());
    const kv = result.kvs[0];
    const meta = kv === undefined ? undefined : this.decode(kv);
    if (meta === undefined) this.emit(this.cache.delete(path, result.header.revision));
    else this.emit(this.cache.put(meta, kv!.mod_revision));
    return this.cache.at(path);
  }

  async close(): Promise<void> {
    if (this.isClosed) return;
    this.isClosed = true;
    this.unhookClose();
    this.stop();
    this.listeners.clear();
  }

  private keyOf(path: string): string {
    return `${this.namespace}${createHash('sha256').update(path).digest('hex')}`;
  }

  /** The state a value holds, or undefined (reported) when it does not decode or names another path. */
  private decode(kv: IKeyValue): StreamMeta | undefined {
    const key = kv.key.toString();
    const decoded = decodeStreamMeta(kv.value.toString());
    if (!decoded.ok) {
      this.warn(`runnel: streams: ignoring etcd key ${key}: ${decoded.problem}`);
      return undefined;
    }
    if (this.keyOf(decoded.value.path) !== key) {
      this.warn(`runnel: streams: ignoring etcd key ${key}: it holds the state of another path`);
      return undefined;
    }
    return decoded.value;
  }

  private emit(change: CachedChange | null): void {
    if (change === null) return;
    if (change.now === undefined) this.pathByKey.delete(this.keyOf(change.path));
    else if (change.before === undefined) this.pathByKey.set(this.keyOf(change.path), change.path);
    for (const l of [...this.listeners]) l(change.path, change.before, change.now);
  }

  private stop(): void {
    this.generation++;
    clearTimeout(this.resyncTimer);
    this.cancelWatcher();
  }

  /** Loads the namespace as of one revision, applies the differences, then watches from the next revision. */
  private async reload(): Promise<void> {
    const generation = ++this.generation;
    this.cancelWatcher();
    const response = await this.connection.run('load streams', () => this.connection.client.getAll().prefix(this.namespace).exec());
    if (generation !== this.generation || this.isClosed) return;
    const entries = response.kvs.flatMap((kv) => {
      const meta = this.decode(kv);
      return meta === undefined ? [] : [{ meta, revision: kv.mod_revision }];
    });
    for (const change of this.cache.replace(entries, response.header.revision)) this.emit(change);
    this.startWatcher(generation, (BigInt(response.header.revision) + 1n).toString());
  }

  private startWatcher(generation: number, fromRevision: string): void {
    const watcher = this.connection.client.watch().prefix(this.namespace).startRevision(fromRevision).watcher();
    this.watcher = watcher;
    watcher.on('data', (response: IWatchResponse) => {
      if (generation !== this.generation || response.events.length === 0) return;
      this.resyncDelayMs = this.limits.watchResyncMinDelayMs;
      let last = '0';
      for (const event of response.events) {
        last = event.kv.mod_revision;
        if (event.type === 'Delete') {
          const path = this.pathByKey.get(event.kv.key.toString());
          if (path !== undefined) this.emit(this.cache.delete(path, event.kv.mod_revision));
          continue;
        }
        const meta = this.decode(event.kv);
        if (meta !== undefined) this.emit(this.cache.put(meta, event.kv.mod_revision));
      }
      this.cache.forgetTombstonesThrough(last);
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
}
