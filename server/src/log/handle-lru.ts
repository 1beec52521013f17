/**
 * Which file handles stay open (pure, sans-IO): an LRU of open handles with
 * pins, driven by file-handle-cache.ts. A caller pins a key before using its
 * handle and unpins it afterwards; the core answers what to open and what to
 * close, and the driver performs it.
 *
 * Invariants:
 * - `openCount <= maxOpen` unless every open handle is pinned (then a new pin
 *   still opens one: a read never waits for another read to finish; the
 *   excess is closed as soon as pins drop).
 * - A pinned key is never returned for closing.
 * - Among unpinned keys the least recently unpinned is closed first.
 */
import { assert } from '@runnel/client/codec';

/** What the driver must do after `pin`. Ordering: close every `evict` key before opening `key` (fd count stays bounded). */
export interface PinEffects<K> {
  /** The key was not open: open it (once) before using it. */
  mustOpen: boolean;
  /** Unpinned keys to close now, oldest first. */
  evict: K[];
}

export class HandleLru<K> {
  /** Pinned open keys → pin count. */
  readonly #pinned = new Map<K, number>();
  /** Unpinned open keys, least recently used first (Map keeps insertion order). */
  readonly #idle = new Map<K, true>();

  constructor(readonly maxOpen: number) {
    assert(Number.isInteger(maxOpen) && maxOpen >= 1, `maxOpen must be an integer >= 1, got ${maxOpen}`);
  }

  get openCount(): number {
    return this.#pinned.size + this.#idle.size;
  }

  get pinnedCount(): number {
    return this.#pinned.size;
  }

  isOpen(key: K): boolean {
    return this.#pinned.has(key) || this.#idle.has(key);
  }

  isPinned(key: K): boolean {
    return this.#pinned.has(key);
  }

  /** Pins `key` (opening it if needed). Each pin needs one `unpin`. */
  pin(key: K): PinEffects<K> {
    const pins = this.#pinned.get(key);
    if (pins !== undefined) {
      this.#pinned.set(key, pins + 1);
      return { mustOpen: false, evict: [] };
    }
    const wasIdle = this.#idle.delete(key);
    this.#pinned.set(key, 1);
    return { mustOpen: !wasIdle, evict: this.#trim() };
  }

  /** Drops one pin; returns keys to close (the handle becomes the most recently used idle one). */
  unpin(key: K): K[] {
    const pins = this.#pinned.get(key);
    assert(pins !== undefined, 'unpin of a key that is not pinned (every unpin needs its pin)');
    if (pins > 1) {
      this.#pinned.set(key, pins - 1);
      return [];
    }
    this.#pinned.delete(key);
    this.#idle.set(key, true);
    return this.#trim();
  }

  /** Forgets `key` whatever its pins (closed or deleted by the owner). Returns whether it was open. */
  remove(key: K): boolean {
    return this.#pinned.delete(key) || this.#idle.delete(key);
  }

  /** Takes every unpinned key out (the driver closes them): the process ran out of descriptors and these are the ones it can give back. */
  shedIdle(): K[] {
    const idle = [...this.#idle.keys()];
    this.#idle.clear();
    return idle;
  }

  #trim(): K[] {
    const evict: K[] = [];
    for (const key of this.#idle.keys()) {
      if (this.openCount <= this.maxOpen) break;
      this.#idle.delete(key);
      evict.push(key);
    }
    return evict;
  }
}
