/**
 * Producer-state snapshot files `<20-digit offset>.snapshot`: the producer
 * table as of that offset (every batch below it applied), written when a
 * segment rolls and at clean close, so reopening replays only the batch
 * headers after the newest snapshot instead of the whole log (Kafka's
 * ProducerStateManager does the same). Only the newest few are kept.
 */
import { parseSegmentFileName, segmentFileName, type LogDirectory } from './segment-file.ts';

/** Snapshots kept; older ones are deleted. */
export const PRODUCER_SNAPSHOTS_RETAINED = 2;

export class SnapshotStore {
  #offsets: number[] = [];

  constructor(private readonly dir: LogDirectory) {}

  /** Offsets of the snapshot files present, ascending. */
  static async list(dir: LogDirectory): Promise<number[]> {
    return (await dir.list()).map((n) => parseSegmentFileName(n, '.snapshot')).filter((s): s is number => s !== null).sort((a, b) => a - b);
  }

  /** Reads the directory and prunes to the newest PRODUCER_SNAPSHOTS_RETAINED. */
  async load(): Promise<void> {
    this.#offsets = await SnapshotStore.list(this.dir);
    await this.prune();
  }

  async write(offset: number, bytes: Uint8Array): Promise<void> {
    await this.dir.writeAtomic(segmentFileName(offset, '.snapshot'), bytes);
    if (!this.#offsets.includes(offset)) this.#offsets.push(offset);
    this.#offsets.sort((a, b) => a - b);
    await this.prune();
  }

  /** Deletes every snapshot (the log restarts empty past them). */
  async clear(): Promise<void> {
    for (const offset of this.#offsets.splice(0)) await this.dir.remove(segmentFileName(offset, '.snapshot'));
  }

  private async prune(): Promise<void> {
    while (this.#offsets.length > PRODUCER_SNAPSHOTS_RETAINED) {
      await this.dir.remove(segmentFileName(this.#offsets.shift()!, '.snapshot'));
    }
  }
}
