/**
 * What a Durable Stream is beyond its topic's records: content type, expiry,
 * closed flag, fork parent, producer and Stream-Seq state. One JSON file per
 * stream in `<data>/streams/`, named by the SHA-256 of the stream path and
 * rewritten atomically (write, fsync, rename) before a change is answered, so
 * a close or a Stream-Seq survives a crash like the records do. Idempotent
 * producer state is not here: it is in the records (producer-mapping.ts).
 *
 * In a cluster these files are local to the broker that serves the URL (the
 * records are replicated, this state is not yet; docs/durable-streams.md).
 */
import { createHash } from 'node:crypto';
import { mkdir, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { readFileIfExists, writeFileAtomic } from '../log/atomic-file.ts';
import type { ProducerState } from './protocol.ts';

export interface StreamMeta {
  path: string;
  /** Offset generation (protocol.ts); a fork has its source's. */
  generation: string;
  /** Unique per incarnation: the ETag's stream id and the topic-name suffix. */
  incarnation: string;
  /** The Runnel topic (1 partition) holding this stream's own records. */
  topic: string;
  contentType: string;
  ttlSeconds?: number;
  expiresAtMs?: number;
  createdAtMs: number;
  closed: boolean;
  /** The producer tuple whose append closed the stream (its retry is a duplicate, not a conflict). */
  closedBy?: { id: string; epoch: number; seq: number };
  /**
   * Key of the stream's Producer-Id → Runnel producer id mapping (producer-mapping.ts); minted at creation.
   * The producer state itself is the topic partition's (in the records), not this file's.
   */
  producerKey?: string;
  /** Producer state of streams written before it moved into the log: read as a fallback, never written. */
  producers?: Record<string, ProducerState>;
  /** Highest Stream-Seq accepted (scope: the stream). */
  lastStreamSeq?: string;
  /** Positions below `base` are the source's (a fork); 0 otherwise. */
  base: number;
  fork?: { sourcePath: string; sourceIncarnation: string; offset: string; subOffset: number };
  /** Deleted while forks still read it: 410 to direct access, data kept. */
  softDeleted: boolean;
  /** Live forks reading this stream. */
  forkCount: number;
}

/** Bound on the number of streams one broker keeps (each is a topic and a file). */
export const MAX_STREAMS = 100_000;

export class StreamStore {
  private readonly byPath = new Map<string, StreamMeta>();
  /** Soft-deleted or live, by incarnation: forks find their source through it. */
  private readonly byIncarnation = new Map<string, StreamMeta>();

  private constructor(private readonly dir: string) {}

  static async open(dir: string): Promise<StreamStore> {
    await mkdir(dir, { recursive: true });
    const store = new StreamStore(dir);
    for (const name of await readdir(dir)) {
      if (!name.endsWith('.json')) continue;
      const text = await readFileIfExists(join(dir, name));
      if (text === null) continue;
      const meta = JSON.parse(text) as StreamMeta;
      store.byIncarnation.set(meta.incarnation, meta);
      if (!meta.softDeleted) store.byPath.set(meta.path, meta);
    }
    return store;
  }

  get size(): number {
    return this.byIncarnation.size;
  }

  get(path: string): StreamMeta | undefined {
    return this.byPath.get(path);
  }

  /** A soft-deleted stream at `path` (it blocks re-creation and answers 410). */
  softDeletedAt(path: string): StreamMeta | undefined {
    for (const m of this.byIncarnation.values()) if (m.path === path && m.softDeleted) return m;
    return undefined;
  }

  byId(incarnation: string): StreamMeta | undefined {
    return this.byIncarnation.get(incarnation);
  }

  private fileOf(meta: StreamMeta): string {
    return join(this.dir, `${createHash('sha256').update(meta.path).update('\0').update(meta.incarnation).digest('hex').slice(0, 40)}.json`);
  }

  /** Durable before it resolves. */
  async save(meta: StreamMeta): Promise<void> {
    await writeFileAtomic(this.fileOf(meta), JSON.stringify(meta));
    this.byIncarnation.set(meta.incarnation, meta);
    if (meta.softDeleted) {
      if (this.byPath.get(meta.path) === meta) this.byPath.delete(meta.path);
    } else this.byPath.set(meta.path, meta);
  }

  async remove(meta: StreamMeta): Promise<void> {
    if (this.byPath.get(meta.path) === meta) this.byPath.delete(meta.path);
    this.byIncarnation.delete(meta.incarnation);
    await rm(this.fileOf(meta), { force: true });
  }
}
