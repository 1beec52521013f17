/**
 * A broker's index of stream states (sans-IO): by path, by incarnation, each
 * with the revision it was stored at. Fed by two sources that can interleave
 * in a cluster — this broker's own commits (applied at once, so it reads its
 * writes) and the etcd watch (every broker's commits, in revision order).
 *
 * Invariant: a path's entry only moves forward in revision. A put or delete at
 * or below what the path last saw is ignored (the watch delivering a commit
 * this broker already applied, or one older than it); a delete leaves a
 * tombstone until the watch has passed its revision, so an older put cannot
 * bring the stream back.
 */
import { assert } from '@runnel/client/codec';
import type { StoredStream, StreamMeta } from './stream-store.ts';

/** One cached change: what `path` held before and holds now. */
export interface CachedChange { path: string; before: StoredStream | undefined; now: StoredStream | undefined }

const rev = (revision: string): bigint => BigInt(revision);

export class StreamCache {
  private readonly byPath = new Map<string, StoredStream>();
  private readonly byIncarnation = new Map<string, StoredStream>();
  /** Deleted paths and the deletion's revision, until the watch is past it. */
  private readonly tombstones = new Map<string, bigint>();

  get size(): number {
    return this.byPath.size;
  }

  /** The live stream at `path`. */
  get(path: string): StoredStream | undefined {
    const meta = this.byPath.get(path);
    return meta?.softDeleted ? undefined : meta;
  }

  /** Whatever is at `path`, live or soft-deleted. */
  at(path: string): StoredStream | undefined {
    return this.byPath.get(path);
  }

  softDeletedAt(path: string): StoredStream | undefined {
    const meta = this.byPath.get(path);
    return meta?.softDeleted ? meta : undefined;
  }

  byId(incarnation: string): StoredStream | undefined {
    return this.byIncarnation.get(incarnation);
  }

  paths(): string[] {
    return [...this.byPath.keys()];
  }

  /** Stores `meta` at `revision` unless the path already saw that revision or a later one. */
  put(meta: StreamMeta, revision: string): CachedChange | null {
    const r = rev(revision);
    if (!this.isNewer(meta.path, r)) return null;
    this.tombstones.delete(meta.path);
    const before = this.byPath.get(meta.path);
    const now: StoredStream = Object.freeze({ ...meta, revision });
    if (before !== undefined && before.incarnation !== meta.incarnation) this.byIncarnation.delete(before.incarnation);
    this.byPath.set(meta.path, now);
    this.byIncarnation.set(meta.incarnation, now);
    return { path: meta.path, before, now };
  }

  /** Removes `path` as of `revision` unless the path already saw a later revision. */
  delete(path: string, revision: string): CachedChange | null {
    const r = rev(revision);
    if (!this.isNewer(path, r)) return null;
    this.tombstones.set(path, r);
    const before = this.byPath.get(path);
    if (before === undefined) return null;
    this.byPath.delete(path);
    this.byIncarnation.delete(before.incarnation);
    return { path, before, now: undefined };
  }

  /** The watch delivered everything up to `revision`: older tombstones can no longer be overtaken. */
  forgetTombstonesThrough(revision: string): void {
    const r = rev(revision);
    for (const [path, at] of this.tombstones) if (at <= r) this.tombstones.delete(path);
  }

  /**
   * A full snapshot as of `revision` (start, watch resync): paths absent from it are deleted unless this
   * broker's own commit put them there after `revision`. Returns every change.
   */
  replace(entries: readonly { meta: StreamMeta; revision: string }[], revision: string): CachedChange[] {
    const changes: CachedChange[] = [];
    const present = new Set<string>();
    for (const e of entries) {
      present.add(e.meta.path);
      const c = this.put(e.meta, e.revision);
      if (c) changes.push(c);
    }
    const r = rev(revision);
    for (const path of this.paths()) {
      if (present.has(path)) continue;
      const held = this.byPath.get(path);
      assert(held !== undefined, 'a cached path has an entry');
      if (rev(held.revision) > r) continue;
      const c = this.delete(path, revision);
      if (c) changes.push(c);
    }
    this.forgetTombstonesThrough(revision);
    return changes;
  }

  private isNewer(path: string, r: bigint): boolean {
    const held = this.byPath.get(path);
    if (held !== undefined && rev(held.revision) >= r) return false;
    const tomb = this.tombstones.get(path);
    return tomb === undefined || tomb < r;
  }
}
