/**
 * The single node's `OffsetStore` (offset-store.ts): an fsynced append-only
 * file `<data>/groups/offsets.log` with periodic compaction (docs/groups.md).
 *
 * Each line is `<crc32c hex> <json>\n`; one line holds one whole commit
 * request, so a commit is all-or-nothing. Appends are group-committed: all
 * commits waiting while an fdatasync runs share the next one.
 * Recovery: lines are replayed in order; the first line with a bad CRC or a
 * missing newline is a torn tail and is truncated away.
 * Compaction: when the file holds many more lines than live entries it is
 * rewritten as a snapshot (tmp + fsync + rename + dir fsync).
 * Invariant: `commit()` resolves only after its line is on disk.
 */
import { crc32c } from '@node-rs/crc32';
import { mkdir, open, readFile, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '../log/atomic-file.ts';
import { RunnelError, type CommittedOffset } from '@runnel/client/codec';
import type { OffsetStore } from './offset-store.ts';

/** One line of the file: a commit (`o`) or a topic deletion tombstone (`deleteTopic`). */
type Entry = { g: string; o: CommittedOffset[] } | { deleteTopic: string };

/** Rewrite when the file has this many lines more than the live (group, partition) entries. */
const COMPACT_SLACK_LINES = 10_000;

export class FileOffsetStore implements OffsetStore {
  /** group → "topic\0partition" → committed offset */
  private readonly offsets = new Map<string, Map<string, CommittedOffset>>();
  private lines = 0;
  private pending: { line: string; resolve: () => void; reject: (e: unknown) => void }[] = [];
  private flushing: Promise<void> | null = null;
  private closed = false;

  private constructor(private readonly dir: string, private file: FileHandle) {}

  static async open(dataDir: string): Promise<FileOffsetStore> {
    const dir = join(dataDir, 'groups');
    await mkdir(dir, { recursive: true });
    const path = join(dir, 'offsets.log');
    const text = await readFile(path, 'utf8').catch((e: NodeJS.ErrnoException) => (e.code === 'ENOENT' ? '' : Promise.reject(e)));
    const file = await open(path, 'a+');
    const store = new FileOffsetStore(dir, file);
    const validBytes = store.replay(text);
    if (validBytes < Buffer.byteLength(text)) {
      await file.truncate(validBytes);
      await file.datasync();
    }
    return store;
  }

  /** Applies valid lines; returns the byte length of the valid prefix. */
  private replay(text: string): number {
    let at = 0;
    let bytes = 0;
    while (at < text.length) {
      const nl = text.indexOf('\n', at);
      if (nl < 0) break;
      const line = text.slice(at, nl);
      const space = line.indexOf(' ');
      const json = line.slice(space + 1);
      if (space !== 8 || (crc32c(json) >>> 0).toString(16).padStart(8, '0') !== line.slice(0, 8)) break;
      this.apply(JSON.parse(json) as Entry);
      this.lines++;
      bytes += Buffer.byteLength(line) + 1;
      at = nl + 1;
    }
    return bytes;
  }

  private apply(entry: Entry): void {
    if ('deleteTopic' in entry) {
      for (const byKey of this.offsets.values()) {
        for (const [key, c] of byKey) if (c.topic === entry.deleteTopic) byKey.delete(key);
      }
      return;
    }
    let byKey = this.offsets.get(entry.g);
    if (!byKey) this.offsets.set(entry.g, (byKey = new Map()));
    for (const c of entry.o) byKey.set(`${c.topic}\0${c.partition}`, { topic: c.topic, partition: c.partition, offset: c.offset, metadata: c.metadata });
  }

  /** Durably records the offsets; visible to `fetch` once resolved. */
  commit(group: string, offsets: CommittedOffset[]): Promise<void> {
    return this.write({ g: group, o: offsets });
  }

  /** Drops every group's offsets for a deleted topic (its id changes on re-creation). */
  deleteTopic(topic: string): Promise<void> {
    return this.write({ deleteTopic: topic });
  }

  fetch(group: string, topics?: readonly string[]): CommittedOffset[] {
    const byKey = this.offsets.get(group);
    if (!byKey) return [];
    const all = [...byKey.values()];
    return topics && topics.length > 0 ? all.filter((c) => topics.includes(c.topic)) : all;
  }

  /** Groups that have committed offsets. */
  groups(): string[] {
    return [...this.offsets.keys()].filter((g) => (this.offsets.get(g)?.size ?? 0) > 0);
  }

  private write(entry: Entry): Promise<void> {
    if (this.closed) return Promise.reject(new RunnelError('SHUTTING_DOWN', 'offset store is closed'));
    const json = JSON.stringify(entry);
    const line = `${(crc32c(json) >>> 0).toString(16).padStart(8, '0')} ${json}\n`;
    return new Promise<void>((resolve, reject) => {
      this.pending.push({ line, resolve: () => { this.apply(entry); resolve(); }, reject });
      this.flushing ??= this.flushLoop();
    });
  }

  /** Group commit: one write + fdatasync for everything queued meanwhile. */
  private async flushLoop(): Promise<void> {
    try {
      while (this.pending.length > 0) {
        const batch = this.pending;
        this.pending = [];
        try {
          await this.file.write(batch.map((p) => p.line).join(''));
          await this.file.datasync();
          this.lines += batch.length;
          for (const p of batch) p.resolve();
        } catch (e) {
          for (const p of batch) p.reject(e);
        }
        await this.maybeCompact();
      }
    } finally {
      this.flushing = null;
    }
  }

  private async maybeCompact(): Promise<void> {
    let live = 0;
    for (const byKey of this.offsets.values()) live += byKey.size;
    if (this.lines < live + COMPACT_SLACK_LINES) return;
    let text = '';
    let lines = 0;
    for (const [g, byKey] of this.offsets) {
      if (byKey.size === 0) continue;
      const json = JSON.stringify({ g, o: [...byKey.values()] });
      text += `${(crc32c(json) >>> 0).toString(16).padStart(8, '0')} ${json}\n`;
      lines++;
    }
    await writeFileAtomic(join(this.dir, 'offsets.log'), text);
    await this.file.close();
    this.file = await open(join(this.dir, 'offsets.log'), 'a+');
    this.lines = lines;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.flushing;
    await this.file.close();
  }
}
