/**
 * Broker-wide bound on open segment files (`maxOpenFiles`): the I/O driver of
 * handle-lru.ts. Every segment owns one `CachedFile`; its handle is opened on
 * first use and closed, least recently used first, when the cache would hold
 * more than `maxOpenFiles`. Nothing holds a handle for its life: a log's
 * writer pins its write segment's handle while it has appends to write or
 * fdatasync (log-writer.ts), a read pins the handle for the duration of its
 * I/O; an idle partition's handles are ordinary LRU entries, closed when
 * others need the room and reopened by the next append or read.
 *
 * Invariants:
 * - a pinned handle is never closed by the cache (only by its owner's `close`);
 * - evicted handles are closed before the handle that evicted them is opened,
 *   so the number of segment fds never exceeds `maxOpenFiles` unless every
 *   open one is pinned (then by the pinned excess, until the pins drop);
 * - an open that fails for lack of descriptors (EMFILE: this process, ENFILE:
 *   the system) closes every idle handle and tries once more; failing again it
 *   is refused with a retryable LIMIT_EXCEEDED (`isDescriptorShortage`), never
 *   retried in a loop here, and reported to the observers.
 * NB: short-lived handles (index/checkpoint/snapshot atomic writes, directory
 * fsyncs) are opened and closed within one call and are not counted here.
 */
import { RunnelError } from '@runnel/client/codec';
import { defaultLimits } from '../limits.ts';
import { HandleLru } from './handle-lru.ts';
import type { LogDirectory, SegmentFile } from './segment-file.ts';

/** Gauges for the broker's metrics endpoint and tests. */
export interface FileHandleCacheStats {
  /** Segment handles open (or being opened) now. */
  openFiles: number;
  /** Highest `openFiles` seen since creation. */
  peakOpenFiles: number;
  /** Handles pinned by active segments and in-flight reads. */
  pinnedFiles: number;
  opens: number;
  /** Closed by the LRU (not by their owner). */
  evictions: number;
  /** Closes of evicted handles that failed (the fd is gone either way); the last error is kept. */
  closeErrors: number;
  lastCloseError: unknown;
  /** Opens refused for lack of descriptors after closing the idle handles (the caller got LIMIT_EXCEEDED). */
  openRefusals: number;
  /** Idle handles closed to make descriptors free after an EMFILE/ENFILE. */
  shedFiles: number;
}

/** What the operator must see (metrics, log lines; fd-budget.ts wires it). Observers must not throw. */
export interface FileHandleObserver {
  /** `openFiles` changed: a handle is being opened, or one was closed. Called on open and close only, never per pin. */
  openFilesChanged?(openFiles: number): void;
  /** An open failed for lack of descriptors even after the idle handles were closed. */
  openRefused?(refusal: { errno: DescriptorErrno; path: string }): void;
}

export type DescriptorErrno = 'EMFILE' | 'ENFILE';

/** The OS error of an open that found no free descriptor, or null. */
export function descriptorErrnoOf(err: unknown): DescriptorErrno | null {
  const code = (err as NodeJS.ErrnoException | null)?.code;
  return code === 'EMFILE' || code === 'ENFILE' ? code : null;
}

/** True for the LIMIT_EXCEEDED this cache throws when no descriptor is free (retryable: nothing was written). */
export function isDescriptorShortage(err: unknown): err is RunnelError {
  const errno = err instanceof RunnelError && err.errorName === 'LIMIT_EXCEEDED' ? err.details?.errno : undefined;
  return errno === 'EMFILE' || errno === 'ENFILE';
}

export class FileHandleCache {
  readonly #lru: HandleLru<CachedFile>;
  readonly #stats = { peakOpenFiles: 0, opens: 0, evictions: 0, closeErrors: 0, lastCloseError: undefined as unknown, openRefusals: 0, shedFiles: 0 };
  readonly #observers = new Set<FileHandleObserver>();

  /** @example const files = new FileHandleCache(limits.maxOpenFiles); await PartitionLog.open(dir, { limits, files }); */
  constructor(readonly maxOpenFiles: number) {
    this.#lru = new HandleLru(maxOpenFiles);
  }

  get openFiles(): number {
    return this.#lru.openCount;
  }

  stats(): FileHandleCacheStats {
    return { openFiles: this.#lru.openCount, pinnedFiles: this.#lru.pinnedCount, ...this.#stats };
  }

  /** Registers `observer`; returns the function that removes it. */
  observe(observer: FileHandleObserver): () => void {
    this.#observers.add(observer);
    return () => this.#observers.delete(observer);
  }

  /** A lazily opened handle on `name` in `dir`; nothing is opened until `acquire`. */
  file(dir: LogDirectory, name: string): CachedFile {
    return new CachedFile(this, dir, name);
  }

  /** @internal (CachedFile) Pins `file`; returns the closes to wait for before opening it, or null when it is open. */
  pin(file: CachedFile): Promise<void>[] | null {
    const { mustOpen, evict } = this.#lru.pin(file);
    const closes = evict.map((f) => f.closeEvicted());
    this.#stats.evictions += evict.length;
    if (!mustOpen) {
      if (evict.length > 0) this.#openFilesChanged();
      return null;
    }
    this.#stats.opens++;
    this.#stats.peakOpenFiles = Math.max(this.#stats.peakOpenFiles, this.#lru.openCount);
    this.#openFilesChanged();
    return closes;
  }

  /** @internal */
  unpin(file: CachedFile): void {
    const evict = this.#lru.unpin(file);
    if (evict.length === 0) return;
    this.#stats.evictions += evict.length;
    for (const f of evict) void f.closeEvicted();
    this.#openFilesChanged();
  }

  /** @internal */
  forget(file: CachedFile): void {
    if (this.#lru.remove(file)) this.#openFilesChanged();
  }

  /** @internal (CachedFile) Out of descriptors: closes every idle handle; resolves when they are closed. Returns how many. */
  async shedIdle(): Promise<number> {
    const idle = this.#lru.shedIdle();
    if (idle.length === 0) return 0;
    this.#stats.shedFiles += idle.length;
    const closes = idle.map((f) => f.closeEvicted());
    this.#openFilesChanged();
    await Promise.all(closes);
    return idle.length;
  }

  /** @internal (CachedFile) */
  reportOpenRefused(errno: DescriptorErrno, path: string): void {
    this.#stats.openRefusals++;
    for (const o of this.#observers) o.openRefused?.({ errno, path });
  }

  #openFilesChanged(): void {
    if (this.#observers.size === 0) return;
    const n = this.#lru.openCount;
    for (const o of this.#observers) o.openFilesChanged?.(n);
  }

  /** @internal */
  reportCloseError(err: unknown): void {
    this.#stats.closeErrors++;
    this.#stats.lastCloseError = err;
  }
}

/** One segment file's handle slot. `acquire`/`release` bracket every use; `close` ends it for good. */
export class CachedFile {
  #file: SegmentFile | null = null;
  #opening: Promise<SegmentFile> | null = null;
  #closing: Promise<void> = Promise.resolve();
  #isClosed = false;

  constructor(private readonly cache: FileHandleCache, private readonly dir: LogDirectory, readonly name: string) {}

  /**
   * Pins the handle (opening it, `create`-ing the file if asked) and returns it.
   * Every successful acquire needs one `release`; a failed one needs none.
   */
  acquire(options: { create: boolean } = { create: false }): Promise<SegmentFile> {
    if (this.#isClosed) return Promise.reject(new RunnelError('KAFKA_STORAGE_ERROR', `segment ${this.name} is closed or deleted`));
    const closes = this.cache.pin(this);
    if (closes !== null) this.#opening = this.#open(closes, options.create);
    if (this.#file) return Promise.resolve(this.#file);
    return this.#opening!;
  }

  release(): void {
    if (!this.#isClosed) this.cache.unpin(this);
  }

  /** The open handle (always non-null while someone holds a pin: the writer's write pin, a read), or null. */
  get openHandle(): SegmentFile | null {
    return this.#file;
  }

  /** Closes the handle whatever its pins (log close, segment deletion); later acquires fail. */
  async close(): Promise<void> {
    this.#isClosed = true;
    this.cache.forget(this);
    const opening = this.#opening;
    this.#file = null;
    this.#opening = null;
    const file = await opening?.catch(() => null);
    await this.#closing;
    await file?.close();
  }

  /** @internal (FileHandleCache) The LRU dropped this unpinned handle. */
  closeEvicted(): Promise<void> {
    const file = this.#file;
    this.#file = null;
    this.#opening = null;
    if (file) this.#closing = file.close().catch((err) => this.cache.reportCloseError(err));
    return this.#closing;
  }

  async #open(closes: Promise<void>[], create: boolean): Promise<SegmentFile> {
    try {
      await Promise.all(closes);
      await this.#closing;
      const file = await this.#openRelieving(create);
      if (this.#isClosed) {
        await file.close();
        throw new RunnelError('KAFKA_STORAGE_ERROR', `segment ${this.name} was closed while opening`);
      }
      this.#file = file;
      return file;
    } catch (err) {
      // Every waiter of this open is rejected and will not release: drop all its pins.
      this.cache.forget(this);
      this.#opening = null;
      throw err;
    }
  }

  /** One open; on EMFILE/ENFILE the idle handles are closed and it is tried once more, then refused LIMIT_EXCEEDED. */
  async #openRelieving(create: boolean): Promise<SegmentFile> {
    try {
      return await this.dir.openFile(this.name, { create });
    } catch (err) {
      if (descriptorErrnoOf(err) === null) throw err;
    }
    // NB: our own idle handles are descriptors too (maxOpenFiles may be set above what the process can hold).
    await this.cache.shedIdle();
    try {
      return await this.dir.openFile(this.name, { create });
    } catch (err) {
      const errno = descriptorErrnoOf(err);
      if (errno === null) throw err;
      const path = `${this.dir.path}/${this.name}`;
      this.cache.reportOpenRefused(errno, path);
      throw new RunnelError('LIMIT_EXCEEDED', `out of file descriptors (${errno}) opening ${path}: retry after a backoff (operators: raise the open-file limit, ulimit -n, or lower maxConnections/maxOpenFiles)`, { cause: err, details: { errno } });
    }
  }
}

const processCaches = new Map<number, FileHandleCache>();

/**
 * The process-wide cache for `maxOpenFiles` (logs opened without their own
 * `files` share it; one broker has one limits object, hence one cache).
 */
export function processFileHandleCache(maxOpenFiles: number = defaultLimits.maxOpenFiles): FileHandleCache {
  let cache = processCaches.get(maxOpenFiles);
  if (!cache) {
    cache = new FileHandleCache(maxOpenFiles);
    processCaches.set(maxOpenFiles, cache);
  }
  return cache;
}
