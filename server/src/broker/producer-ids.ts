/**
 * Idempotent producer id allocation, durable across restarts.
 *
 * Ids are handed out from blocks: `<data>/meta/producer-ids.json` records the
 * first id of the next unallocated block and is rewritten atomically BEFORE
 * any id of the new block is returned, so no id is ever handed out twice,
 * even after a crash (a crash only skips the rest of a block).
 * A client that persisted its id (browser reload) presents it again and
 * keeps it with its epoch, so the log's (producerId, sequence) de-duplication
 * keeps working across reloads. An id this broker never allocated gets a
 * fresh id instead (the client then restarts its sequences at 0).
 */
import { join } from 'node:path';
import { readFileIfExists, writeFileAtomic } from '../log/atomic-file.ts';

/** Ids reserved per durable write. */
const BLOCK_SIZE = 1000;
/** Kafka's producerEpoch is an int16. */
const MAX_PRODUCER_EPOCH = 32767;

export class ProducerIdAllocator {
  private next: number;
  private blockEnd: number;
  private pending: Promise<void> = Promise.resolve();

  private constructor(private readonly path: string, nextBlock: number) {
    this.next = nextBlock;
    this.blockEnd = nextBlock;
  }

  static async open(dataDir: string): Promise<ProducerIdAllocator> {
    const path = join(dataDir, 'meta', 'producer-ids.json');
    const text = await readFileIfExists(path);
    const nextBlock = text ? (JSON.parse(text) as { nextBlock: number }).nextBlock : 0;
    return new ProducerIdAllocator(path, nextBlock);
  }

  /** `(-1, -1)` allocates; a previously allocated id is returned with its epoch. */
  initProducer(producerId: number, producerEpoch: number): Promise<{ producerId: number; producerEpoch: number }> {
    const known = Number.isSafeInteger(producerId) && producerId >= 0 && producerId < this.next;
    if (known) {
      const epoch = Number.isInteger(producerEpoch) && producerEpoch >= 0 && producerEpoch <= MAX_PRODUCER_EPOCH ? producerEpoch : 0;
      return Promise.resolve({ producerId, producerEpoch: epoch });
    }
    // Serialised: block reservations must not interleave.
    const result = this.pending.then(async () => {
      if (this.next >= this.blockEnd) {
        const end = this.next + BLOCK_SIZE;
        await writeFileAtomic(this.path, JSON.stringify({ nextBlock: end }));
        this.blockEnd = end;
      }
      return { producerId: this.next++, producerEpoch: 0 };
    });
    this.pending = result.then(() => undefined, () => undefined);
    return result;
  }
}
