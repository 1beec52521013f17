/**
 * Durable Streams producers as Runnel idempotent producers: one mechanism.
 *
 * A stream's `(Producer-Id, Producer-Epoch, Producer-Seq)` travels in the
 * header of the record batch its append writes (producerId, producerEpoch,
 * baseSequence), so the partition's producer table (log/producer-state.ts)
 * makes the dedup and fencing decision, and the decision and the records are
 * one fdatasync'd write: rebuilt from the log on restart, replicated with the
 * batches. The endpoint reads that table to shape the protocol's answers
 * (204 with the highest sequence, 403 with the current epoch, 409 with the
 * expected sequence), so no producer state lives anywhere else.
 *
 * Identity: the string Producer-Id becomes a request-sequenced Runnel id,
 * 2^52 + the first 52 bits of HMAC-SHA256(stream key, Producer-Id). The key
 * is 16 random bytes minted with the stream (its state file), so the id is
 * per stream (a fork or a re-created stream starts fresh, as the protocol
 * asks), and nobody can aim a Producer-Id at another producer's numeric id
 * (seen by any reader of the topic) without the key: a client disturbs a
 * producer only by sending its very Producer-Id, which the protocol allows.
 * Runnel SDK and HTTP clients cannot write with these ids at all: a batch's
 * id must be one issued to them (initProducer, HMAC-bound to their subject),
 * and the allocator issues ids from 0 up, far below 2^52. Two Producer-Ids of
 * one stream sharing a numeric id needs ~2^26 producers for even odds.
 *
 * Ranges: Runnel's producerEpoch is an int16 and its sequence an int32, so
 * Producer-Epoch above 32767 or Producer-Seq above 2^31 − 1 is refused (400)
 * instead of wrapping.
 */
import { createHmac, randomBytes } from 'node:crypto';
import { REQUEST_SEQUENCED_PRODUCER_ID_MIN, type ProducerEntry } from '../log/producer-state.ts';
import type { ProducerHeaders, ProducerState } from './protocol.ts';

/** Runnel's producerEpoch is an int16. */
export const MAX_PRODUCER_EPOCH = 0x7fff;
/** Runnel's sequences are int32 (they would wrap to 0 past it). */
export const MAX_PRODUCER_SEQ = 0x7fff_ffff;
const KEY_BYTES = 16;

/** A stream's producer key (hex), minted once per stream incarnation. */
export function newProducerKey(): string {
  return randomBytes(KEY_BYTES).toString('hex');
}

/** The Runnel producer id of `producerId` on the stream whose key is `key`: in [2^52, 2^53). */
export function runnelProducerId(key: string, producerId: string): number {
  const d = createHmac('sha256', Buffer.from(key, 'hex')).update(producerId, 'utf8').digest();
  return REQUEST_SEQUENCED_PRODUCER_ID_MIN + (d[0] & 0x0f) * 2 ** 48 + d.readUIntBE(1, 6);
}

/** Why the tuple cannot be carried in a batch header, or null. */
export function unmappable(p: ProducerHeaders): string | null {
  if (p.epoch > MAX_PRODUCER_EPOCH) return `Producer-Epoch above ${MAX_PRODUCER_EPOCH} is not supported (Runnel producer epochs are int16)`;
  if (p.seq > MAX_PRODUCER_SEQ) return `Producer-Seq above ${MAX_PRODUCER_SEQ} is not supported (Runnel producer sequences are int32): bump the epoch`;
  return null;
}

/** The protocol's view of a partition's producer entry: its epoch and highest accepted sequence. */
export function protocolStateOf(entry: ProducerEntry | undefined): ProducerState | undefined {
  const latest = entry?.batches[entry.batches.length - 1];
  return entry && latest ? { epoch: entry.producerEpoch, lastSeq: latest.lastSequence } : undefined;
}
