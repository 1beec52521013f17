/**
 * Idempotent producer ids: allocation, durable across restarts, and proof
 * of ownership.
 *
 * Ids are handed out from blocks: `<data>/meta/producer-ids.json` records the
 * first id of the next unallocated block and is rewritten atomically BEFORE
 * any id of the new block is returned, so no id is ever handed out twice,
 * even after a crash (a crash only skips the rest of a block).
 *
 * Ownership (issue 11 finding 1): an id travels in every batch it stamps, so
 * anyone who can read the topic can see it. With each id the broker issues a
 * secret, HMAC-SHA256(broker key, id ‖ principal subject), and an id is
 * re-claimed (a browser reload presents its stored id and secret) only with
 * that secret and by the same subject; anything else gets a fresh id (the
 * client then restarts its sequences at 0, nothing of the owner's is
 * touched). The key is 32 random bytes in `<data>/meta/producer-id-key`,
 * so no per-producer state is stored and a secret cannot be forged without it.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { join } from 'node:path';
import { readFileIfExists, writeFileAtomic } from '../log/atomic-file.ts';

/** Ids reserved per durable write. */
const BLOCK_SIZE = 1000;
/** Kafka's producerEpoch is an int16. */
const MAX_PRODUCER_EPOCH = 32767;
/** Secret bytes (base64url in the protocol): 128 bits are far beyond guessing. */
const SECRET_BYTES = 16;
const KEY_BYTES = 32;

export interface IssuedProducer { producerId: number; producerEpoch: number; producerSecret: string }

/** Where id blocks come from: a file on a single node, a compare-and-swap counter in etcd in a cluster. */
export interface ProducerIdBlocks {
  /** Durably reserves `size` ids and returns the first; no id is ever returned twice, even across crashes. */
  reserve(size: number): Promise<number>;
}

/** Blocks recorded in `<data>/meta/producer-ids.json` (rewritten atomically before any id of a block is used). */
class FileProducerIdBlocks implements ProducerIdBlocks {
  constructor(private readonly path: string, private nextBlock: number) {}

  async reserve(size: number): Promise<number> {
    const start = this.nextBlock;
    await writeFileAtomic(this.path, JSON.stringify({ nextBlock: start + size }));
    this.nextBlock = start + size;
    return start;
  }
}

export class ProducerIdAllocator {
  private next = 0;
  private blockEnd = 0;
  private pending: Promise<void> = Promise.resolve();

  private constructor(private readonly blocks: ProducerIdBlocks, private readonly key: Buffer) {}

  static async open(dataDir: string): Promise<ProducerIdAllocator> {
    const path = join(dataDir, 'meta', 'producer-ids.json');
    const keyPath = join(dataDir, 'meta', 'producer-id-key');
    const text = await readFileIfExists(path);
    const nextBlock = text ? (JSON.parse(text) as { nextBlock: number }).nextBlock : 0;
    let keyText = await readFileIfExists(keyPath);
    if (!keyText || Buffer.from(keyText.trim(), 'base64url').length !== KEY_BYTES) {
      keyText = randomBytes(KEY_BYTES).toString('base64url');
      await writeFileAtomic(keyPath, keyText);
    }
    return new ProducerIdAllocator(new FileProducerIdBlocks(path, nextBlock), Buffer.from(keyText.trim(), 'base64url'));
  }

  /** A cluster broker: blocks and the HMAC key shared by every broker, so an id and its secret are valid on all of them. */
  static shared(blocks: ProducerIdBlocks, key: Buffer): ProducerIdAllocator {
    if (key.length !== KEY_BYTES) throw new Error(`producer id key must be ${KEY_BYTES} bytes, got ${key.length}`);
    return new ProducerIdAllocator(blocks, key);
  }

  /** The secret of `producerId` for `subject`. */
  secretOf(producerId: number, subject: string): string {
    return createHmac('sha256', this.key).update(`${producerId}\0${subject}`).digest().subarray(0, SECRET_BYTES).toString('base64url');
  }

  /** Whether `secret` proves that `subject` owns `producerId` (constant time). */
  owns(producerId: number, subject: string, secret: string): boolean {
    // The HMAC is the proof: only a holder of the key could have computed it for this id and subject.
    if (!Number.isSafeInteger(producerId) || producerId < 0) return false;
    const expected = Buffer.from(this.secretOf(producerId, subject));
    const given = Buffer.from(secret);
    return given.length === expected.length && timingSafeEqual(given, expected);
  }

  /**
   * `(-1, …)` allocates. A previously issued id presented with its secret by
   * its subject is returned with its epoch; any other id gets a fresh one.
   */
  initProducer(producerId: number, producerEpoch: number, producerSecret: string, subject: string): Promise<IssuedProducer> {
    if (this.owns(producerId, subject, producerSecret)) {
      const epoch = Number.isInteger(producerEpoch) && producerEpoch >= 0 && producerEpoch <= MAX_PRODUCER_EPOCH ? producerEpoch : 0;
      return Promise.resolve({ producerId, producerEpoch: epoch, producerSecret });
    }
    // Serialised: block reservations must not interleave.
    const result = this.pending.then(async () => {
      if (this.next >= this.blockEnd) {
        this.next = await this.blocks.reserve(BLOCK_SIZE);
        this.blockEnd = this.next + BLOCK_SIZE;
      }
      const id = this.next++;
      return { producerId: id, producerEpoch: 0, producerSecret: this.secretOf(id, subject) };
    });
    this.pending = result.then(() => undefined, () => undefined);
    return result;
  }
}
