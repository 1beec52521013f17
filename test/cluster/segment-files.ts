/**
 * A replica's segment files as the fault suite touches them
 * (docs/storage.md: `<data>/topics/<topicId>/<p>/<20-digit base>.log`, Kafka
 * RecordBatch v2 bytes back to back): read the stored batches, and corrupt
 * the tail of a stopped broker's last segment (truncate at a byte, flip a bit).
 *
 * NB: the batch CRC covers attributes..end (KIP-98), not baseOffset,
 * batchLength or partitionLeaderEpoch: a flipped bit there passes the CRC and
 * only other checks (offset contiguity, the leader-epoch cache) can catch it.
 */
import { open, readdir, readFile, stat, truncate } from 'node:fs/promises';
import { join } from 'node:path';
import { readBatchHeader, verifyBatchCrc } from '@runnel/client/codec';
import type { StoredBatch } from './history.ts';

/** The `.log` files of one partition directory, oldest (lowest base offset) first; none when the directory is missing. */
export async function segmentFiles(partitionDir: string): Promise<string[]> {
  const names = await readdir(partitionDir).catch(() => [] as string[]);
  return names.filter((n) => n.endsWith('.log')).sort().map((n) => join(partitionDir, n));
}

/**
 * The batches stored in `files`, in order, up to the first that is torn or
 * fails its CRC (a replica serves nothing past it).
 */
export async function readStoredBatches(files: readonly string[]): Promise<StoredBatch[]> {
  const batches: StoredBatch[] = [];
  for (const file of files) {
    const bytes = new Uint8Array(await readFile(file));
    let at = 0;
    while (at < bytes.length) {
      const header = readBatchHeader(bytes, at);
      if (!header.ok || !verifyBatchCrc(bytes, at, header.value)) return batches;
      const { baseOffset, lastOffsetDelta, totalBytes } = header.value;
      batches.push({ baseOffset, lastOffset: baseOffset + lastOffsetDelta, bytes: bytes.slice(at, at + totalBytes) });
      at += totalBytes;
    }
  }
  return batches;
}

/** The last non-empty segment of `files`, if any. */
export async function tailSegment(files: readonly string[]): Promise<string | undefined> {
  for (let i = files.length - 1; i >= 0; i--) if ((await stat(files[i])).size > 0) return files[i];
  return undefined;
}

/**
 * Cuts 1..min(size, windowBytes) bytes off the end of `file` (`pick` in
 * [0, 1) chooses how many): a torn tail. Answers the sizes.
 */
export async function truncateTail(file: string, pick: number, windowBytes: number): Promise<{ from: number; to: number }> {
  const { size } = await stat(file);
  const cut = Math.min(size, 1 + Math.floor(pick * Math.min(size, windowBytes)));
  await truncate(file, size - cut);
  return { from: size, to: size - cut };
}

/** Flips one bit of one byte within the last `windowBytes` of `file` (`pick` chooses which) and fsyncs. */
export async function flipTailBit(file: string, pick: number, windowBytes: number): Promise<{ position: number; bit: number; size: number }> {
  const { size } = await stat(file);
  if (size === 0) throw new Error(`${file} is empty: nothing to flip`);
  const position = size - 1 - Math.floor(pick * Math.min(size, windowBytes));
  const bit = Math.floor(pick * 1_000_003) % 8;
  const handle = await open(file, 'r+');
  try {
    const byte = Buffer.alloc(1);
    await handle.read(byte, 0, 1, position);
    byte[0] ^= 1 << bit;
    await handle.write(byte, 0, 1, position);
    await handle.sync();
  } finally {
    await handle.close();
  }
  return { position, bit, size };
}
