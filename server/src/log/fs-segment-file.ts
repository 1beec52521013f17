/**
 * `LogDirectory` / `SegmentFile` on the real file system (node:fs/promises).
 * Appends are one positional `writev` each (libuv loops over IOV_MAX and
 * short writes); `datasync` is a real fdatasync(2). Both run inline (a
 * synchronous call on the event loop) while the disk answers them fast, else
 * on the thread pool (inline-io.ts); reads always go to the thread pool (a
 * cold read can take a disk seek). New, renamed and removed directory entries
 * are made durable by fsyncing the directory.
 */
import { fdatasyncSync, writevSync } from 'node:fs';
import { mkdir, open, readdir, readFile, rm, stat, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { syncDirectory, writeFileAtomic } from './atomic-file.ts';
import { processInlineIo, type InlineIo, type InlineIoGovernor } from './inline-io.ts';
import type { LogDirectory, SegmentFile } from './segment-file.ts';

/** `inline` on the event loop when `governor` allows it (its duration observed), else `pooled` on the thread pool. */
function governed<T>(governor: InlineIoGovernor, inline: () => T, pooled: () => Promise<T>): T | Promise<T> {
  const startedMs = performance.now();
  if (!governor.shouldInline(startedMs)) return pooled();
  const result = inline();
  const endedMs = performance.now();
  governor.observe(endedMs - startedMs, endedMs);
  return result;
}

class FsSegmentFile implements SegmentFile {
  #size: number;
  readonly #io: InlineIo;
  constructor(readonly name: string, private readonly handle: FileHandle, size: number, io: InlineIo) {
    this.#size = size;
    this.#io = io;
  }

  get size(): number {
    return this.#size;
  }

  async append(chunks: readonly Uint8Array[]): Promise<void> {
    let total = 0;
    for (const c of chunks) total += c.byteLength;
    if (total === 0) return;
    const bytesWritten = await governed(this.#io.write,
      () => writevSync(this.handle.fd, chunks as Uint8Array[], this.#size),
      async () => (await this.handle.writev(chunks as Uint8Array[], this.#size)).bytesWritten);
    if (bytesWritten !== total) {
      // libuv already loops on short writes; a short count here means the disk refused (ENOSPC).
      throw new Error(`short write to ${this.name}: ${bytesWritten} of ${total} bytes`);
    }
    this.#size += total;
  }

  async read(position: number, length: number): Promise<Uint8Array> {
    const buffer = Buffer.allocUnsafe(Math.max(0, length));
    let filled = 0;
    while (filled < length) {
      const { bytesRead } = await this.handle.read(buffer, filled, length - filled, position + filled);
      if (bytesRead === 0) break;
      filled += bytesRead;
    }
    return filled === length ? buffer : buffer.subarray(0, filled);
  }

  async datasync(): Promise<void> {
    await governed(this.#io.sync, () => fdatasyncSync(this.handle.fd), () => this.handle.datasync());
  }

  async truncate(size: number): Promise<void> {
    await this.handle.truncate(size);
    await this.handle.datasync();
    this.#size = size;
  }

  close(): Promise<void> {
    return this.handle.close();
  }
}

export class FsLogDirectory implements LogDirectory {
  readonly #io: InlineIo;
  private constructor(readonly path: string, io: InlineIo) {
    this.#io = io;
  }

  /** Opens (creating if needed) the partition directory at `path`; `io`: when its segment writes and fdatasyncs run inline (default: never). */
  static async open(path: string, io: InlineIo = processInlineIo(0)): Promise<FsLogDirectory> {
    await mkdir(path, { recursive: true });
    return new FsLogDirectory(path, io);
  }

  list(): Promise<string[]> {
    return readdir(this.path);
  }

  async openFile(name: string, options: { create: boolean }): Promise<SegmentFile> {
    const path = join(this.path, name);
    // 'a+' would force O_APPEND; positional writes with 'r+' keep the size under our control.
    let handle: FileHandle;
    try {
      handle = await open(path, 'r+');
    } catch (err) {
      if (!options.create || (err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      handle = await open(path, 'w+');
      await this.syncDirectory();
    }
    const { size } = await handle.stat();
    return new FsSegmentFile(name, handle, size, this.#io);
  }

  async readWhole(name: string): Promise<Uint8Array | null> {
    try {
      return await readFile(join(this.path, name));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw err;
    }
  }

  writeAtomic(name: string, bytes: Uint8Array): Promise<void> {
    return writeFileAtomic(join(this.path, name), bytes);
  }

  async remove(name: string): Promise<void> {
    await rm(join(this.path, name), { force: true });
    await this.syncDirectory();
  }

  async modifiedTimeMs(name: string): Promise<number | null> {
    try {
      return (await stat(join(this.path, name))).mtimeMs;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw err;
    }
  }

  private syncDirectory(): Promise<void> {
    return syncDirectory(this.path);
  }
}
