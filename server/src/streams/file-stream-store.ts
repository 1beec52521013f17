/**
 * Stream state of a single node (stream-store.ts): one JSON file per stream
 * in `<data>/streams/`, named by the SHA-256 of path and incarnation,
 * rewritten atomically (write, fsync, rename) before `commit` resolves, so a
 * close or a Stream-Seq survives a crash like the records do.
 *
 * Revisions are a counter of this process (nothing else writes the files);
 * the compares of one `commit` run under a lock of each path it touches, so
 * they hold while its files are written. NB: a commit of several streams (a
 * fork and its source) is one file write each, not one atomic write: a crash
 * between them can leave a source's fork count off by one (it only delays
 * the removal of a soft-deleted source).
 */
import { createHash } from 'node:crypto';
import { mkdir, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { assert } from '@runnel/client/codec';
import { readFileIfExists, writeFileAtomic } from '../log/atomic-file.ts';
import { StreamCache } from './stream-cache.ts';
import { decodeStreamMeta, encodeStreamMeta, type StoredStream, type StreamChange, type StreamChangeListener, type StreamMeta, type StreamStore } from './stream-store.ts';

export class FileStreamStore implements StreamStore {
  readonly isShared = false;
  private readonly cache = new StreamCache();
  private readonly listeners = new Set<StreamChangeListener>();
  private readonly locks = new Map<string, Promise<void>>();
  private revision = 0;

  private constructor(private readonly dir: string) {}

  /** Loads every stream file of `dir`; a file that does not decode is reported and skipped. */
  static async open(dir: string, warn: (line: string) => void = (line) => console.warn(line)): Promise<FileStreamStore> {
    await mkdir(dir, { recursive: true });
    const store = new FileStreamStore(dir);
    for (const name of (await readdir(dir)).sort()) {
      if (!name.endsWith('.json')) continue;
      const text = await readFileIfExists(join(dir, name));
      if (text === null) continue;
      const decoded = decodeStreamMeta(text);
      if (!decoded.ok) {
        warn(`runnel: streams: ignoring ${join(dir, name)}: ${decoded.problem}`);
        continue;
      }
      store.cache.put(decoded.value, String(++store.revision));
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

  async refresh(path: string): Promise<StoredStream | undefined> {
    return this.cache.at(path);
  }

  onChange(listener: StreamChangeListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  async commit(changes: readonly StreamChange[]): Promise<boolean> {
    const paths = changes.map(pathOf);
    assert(new Set(paths).size === paths.length, 'a commit touches each stream path once');
    const release = await this.lock([...paths].sort());
    try {
      for (const c of changes) {
        const held = this.cache.at(pathOf(c));
        if (c.type === 'create' ? held !== undefined : held?.revision !== c.expected.revision) return false;
      }
      for (const c of changes) {
        if (c.type === 'remove') await rm(this.fileOf(c.expected), { force: true });
        else await writeFileAtomic(this.fileOf(c.type === 'create' ? c.meta : c.next), encodeStreamMeta(c.type === 'create' ? c.meta : c.next));
      }
      const revision = String(++this.revision);
      for (const c of changes) {
        const applied = c.type === 'remove' ? this.cache.delete(c.expected.path, revision) : this.cache.put(c.type === 'create' ? c.meta : c.next, revision);
        if (applied) for (const l of [...this.listeners]) l(applied.path, applied.before, applied.now);
      }
      return true;
    } finally {
      release();
    }
  }

  async close(): Promise<void> {
    this.listeners.clear();
  }

  private fileOf(meta: StreamMeta | StoredStream): string {
    return join(this.dir, `${createHash('sha256').update(meta.path).update('\0').update(meta.incarnation).digest('hex').slice(0, 40)}.json`);
  }

  /** Waits for the locks of `paths` (sorted: no two commits wait on each other) and takes them; returns the release. */
  private async lock(paths: string[]): Promise<() => void> {
    const releases: (() => void)[] = [];
    for (const path of paths) {
      while (this.locks.has(path)) await this.locks.get(path);
      let release!: () => void;
      this.locks.set(path, new Promise<void>((resolve) => { release = resolve; }));
      releases.push(() => {
        this.locks.delete(path);
        release();
      });
    }
    return () => { for (const r of releases) r(); };
  }
}

function pathOf(c: StreamChange): string {
  return c.type === 'create' ? c.meta.path : c.expected.path;
}
