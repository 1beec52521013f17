/**
 * In-memory `LogDirectory` for tests, with fault injection. Each file keeps
 * the bytes written and how many of them a `datasync` has made durable;
 * `crash()` returns the directory a restarted process would see: synced
 * bytes, plus (optionally) a torn prefix of the unsynced ones and garbage.
 * Atomic writes and removals are durable at once, as on the fs after its
 * directory fsync.
 */
import type { LogDirectory, SegmentFile } from './segment-file.ts';

interface MemoryFile {
  data: Uint8Array;
  length: number;
  durableLength: number;
  modifiedTimeMs: number;
}

/** Faults armed by tests; each fires once on the next matching call. */
export interface MemoryFaults {
  failNextAppend?: Error;
  failNextDatasync?: Error;
}

/** How a simulated crash treats bytes written but not yet synced. */
export interface CrashOptions {
  /** Fraction [0, 1] of each file's unsynced bytes that survive (torn write). Default 0. */
  keepUnsyncedFraction?: number;
  /** Garbage appended after the kept bytes of one file (a sector half written). */
  garbage?: { file: string; bytes: Uint8Array };
}

class MemorySegmentFile implements SegmentFile {
  #closed = false;
  constructor(readonly name: string, private readonly file: MemoryFile, private readonly dir: MemoryLogDirectory) {}

  get size(): number {
    return this.file.length;
  }

  async append(chunks: readonly Uint8Array[]): Promise<void> {
    this.checkOpen();
    const fault = this.dir.faults.failNextAppend;
    if (fault) {
      this.dir.faults.failNextAppend = undefined;
      throw fault;
    }
    this.dir.stats.appends++;
    let total = 0;
    for (const c of chunks) total += c.byteLength;
    ensureCapacity(this.file, this.file.length + total);
    for (const c of chunks) {
      this.file.data.set(c, this.file.length);
      this.file.length += c.byteLength;
    }
    this.file.modifiedTimeMs = this.dir.nowMs();
  }

  async read(position: number, length: number): Promise<Uint8Array> {
    this.checkOpen();
    const end = Math.min(this.file.length, position + length);
    return this.file.data.slice(Math.min(position, end), end);
  }

  async datasync(): Promise<void> {
    this.checkOpen();
    const fault = this.dir.faults.failNextDatasync;
    if (fault) {
      this.dir.faults.failNextDatasync = undefined;
      throw fault;
    }
    this.dir.stats.datasyncs++;
    const covered = this.file.length;
    await new Promise((r) => setImmediate(r)); // takes time like a real fdatasync, so appends queue behind it
    this.file.durableLength = Math.max(this.file.durableLength, Math.min(covered, this.file.length));
  }

  async truncate(size: number): Promise<void> {
    this.checkOpen();
    this.file.length = Math.min(this.file.length, size);
    this.file.durableLength = Math.min(this.file.durableLength, this.file.length);
    this.file.data.fill(0, this.file.length);
  }

  async close(): Promise<void> {
    this.#closed = true;
  }

  private checkOpen(): void {
    if (this.#closed) throw new Error(`${this.name} is closed`);
  }
}

/** Smallest buffer of a growing in-memory file (it doubles from there): few regrowths for tiny test files. */
const MIN_FILE_CAPACITY_BYTES = 4096;

function ensureCapacity(file: MemoryFile, needed: number): void {
  if (needed <= file.data.length) return;
  const grown = new Uint8Array(Math.max(needed, file.data.length * 2, MIN_FILE_CAPACITY_BYTES));
  grown.set(file.data.subarray(0, file.length));
  file.data = grown;
}

export class MemoryLogDirectory implements LogDirectory {
  readonly faults: MemoryFaults = {};
  /** Calls seen, for tests of group commit (many appends, few fdatasyncs). */
  readonly stats = { appends: 0, datasyncs: 0 };
  readonly #files = new Map<string, MemoryFile>();

  constructor(readonly path = 'memory:', readonly nowMs: () => number = Date.now) {}

  async list(): Promise<string[]> {
    return [...this.#files.keys()];
  }

  async openFile(name: string, options: { create: boolean }): Promise<SegmentFile> {
    let file = this.#files.get(name);
    if (!file) {
      if (!options.create) throw Object.assign(new Error(`ENOENT: ${name}`), { code: 'ENOENT' });
      file = { data: new Uint8Array(0), length: 0, durableLength: 0, modifiedTimeMs: this.nowMs() };
      this.#files.set(name, file);
    }
    return new MemorySegmentFile(name, file, this);
  }

  async readWhole(name: string): Promise<Uint8Array | null> {
    const file = this.#files.get(name);
    return file ? file.data.slice(0, file.length) : null;
  }

  async writeAtomic(name: string, bytes: Uint8Array): Promise<void> {
    this.#files.set(name, { data: bytes.slice(), length: bytes.length, durableLength: bytes.length, modifiedTimeMs: this.nowMs() });
  }

  async remove(name: string): Promise<void> {
    this.#files.delete(name);
  }

  async modifiedTimeMs(name: string): Promise<number | null> {
    return this.#files.get(name)?.modifiedTimeMs ?? null;
  }

  /** Test hook: overwrite bytes of a file in place (bit rot); they count as durable. */
  corrupt(name: string, position: number, bytes: Uint8Array): void {
    const file = this.#files.get(name);
    if (!file) throw new Error(`no file ${name}`);
    ensureCapacity(file, position + bytes.length);
    file.data.set(bytes, position);
    file.length = Math.max(file.length, position + bytes.length);
    file.durableLength = Math.max(file.durableLength, position + bytes.length);
  }

  /** The directory a process restarted after a power loss would see. The old one stays usable for inspection. */
  crash(options: CrashOptions = {}): MemoryLogDirectory {
    const next = new MemoryLogDirectory(this.path, this.nowMs);
    for (const [name, file] of this.#files) {
      const unsynced = file.length - file.durableLength;
      const kept = file.durableLength + Math.floor(unsynced * (options.keepUnsyncedFraction ?? 0));
      const garbage = options.garbage?.file === name ? options.garbage.bytes : new Uint8Array(0);
      const data = new Uint8Array(kept + garbage.length);
      data.set(file.data.subarray(0, kept));
      data.set(garbage, kept);
      next.#files.set(name, { data, length: data.length, durableLength: data.length, modifiedTimeMs: file.modifiedTimeMs });
    }
    return next;
  }
}
