/**
 * Child process of log-crash.test.ts: opens the partition log at argv[2]
 * (durable mode, small segments so rolls happen) and appends forever:
 * random-size batches, several in flight, plus an idempotent producer whose
 * batches are retried. One stdout line per resolved append, written
 * synchronously (stdout is a pipe), so the parent knows exactly what was
 * acknowledged when it sends SIGKILL:
 *   ack <baseOffset> <lastOffset> <sha1 of the stored bytes>
 *   dup <baseOffset> <lastOffset>        (a retry answered with the original offsets)
 */
import { createHash } from 'node:crypto';
import { encodeRecordBatch } from '@runnel/client/codec';
import { PartitionLog } from '../../server/src/log/partition-log.ts';
import { PRODUCER_BATCHES_RETAINED } from '../../server/src/log/producer-state.ts';

const [dir, seedArg] = process.argv.slice(2);
let seed = Number(seedArg) >>> 0 || 1;
/** xorshift32: reproducible from the seed the parent prints. */
function random(): number {
  seed ^= seed << 13;
  seed ^= seed >>> 17;
  seed ^= seed << 5;
  return (seed >>> 0) / 0x1_0000_0000;
}

const PRODUCER_ID = 77;
const INFLIGHT = 12;
export const CHILD_LOG_OPTIONS = { limits: { maxSegmentBytes: 1024 * 1024, maxBatchBytes: 256 * 1024, indexIntervalBytes: 4096 } };

/** Content of the idempotent producer's batch with `baseSequence` is a pure function of it, so a retry is byte-identical. */
function producerBatch(baseSequence: number, records: number): Uint8Array {
  return encodeRecordBatch({
    producerId: PRODUCER_ID, producerEpoch: 0, baseSequence,
    records: Array.from({ length: records }, (_, i) => ({ value: new Uint8Array(40).fill((baseSequence + i) & 0xff), timestampMs: 1_700_000_000_000 })),
  });
}

function randomBatch(): Uint8Array {
  const records = 1 + Math.floor(random() * 40);
  const size = 1 + Math.floor(random() * 600);
  return encodeRecordBatch({
    records: Array.from({ length: records }, () => ({ value: new Uint8Array(size).fill(Math.floor(random() * 256)), timestampMs: Date.now() })),
  });
}

const say = (line: string) => process.stdout.write(`${line}\n`);
const hash = (bytes: Uint8Array) => createHash('sha1').update(bytes).digest('hex');

async function retry(log: PartitionLog, baseSequence: number, records: number, want: { baseOffset: number; lastOffset: number }): Promise<void> {
  const r = await log.append(producerBatch(baseSequence, records));
  if (!r.duplicate || r.baseOffset !== want.baseOffset || r.lastOffset !== want.lastOffset) {
    say(`error retry of sequence ${baseSequence} gave ${JSON.stringify(r)}, want ${JSON.stringify(want)}`);
    process.exit(1);
  }
  say(`dup ${r.baseOffset} ${r.lastOffset}`);
}

async function main(): Promise<void> {
  const log = await PartitionLog.open(dir, CHILD_LOG_OPTIONS);
  // Retry the newest batch the log remembers from the previous life: must be a duplicate.
  const known = log.producerState(PRODUCER_ID);
  let sequence = 0;
  if (known) {
    const last = known.batches[known.batches.length - 1];
    sequence = last.lastSequence + 1;
    await retry(log, last.baseSequence, last.lastSequence - last.baseSequence + 1, last);
  }
  say(`ready ${log.logEndOffset}`);
  const inflight = new Set<Promise<void>>();
  let idempotentIssued = 0;
  for (;;) {
    while (inflight.size < INFLIGHT) {
      const isIdempotent = random() < 0.3;
      const records = 1 + Math.floor(random() * 20);
      const baseSequence = sequence;
      const index = idempotentIssued;
      if (isIdempotent) {
        sequence += records;
        idempotentIssued++;
      }
      const batch = isIdempotent ? producerBatch(baseSequence, records) : randomBatch();
      const p = log.append(batch).then(async (r) => {
        say(`ack ${r.baseOffset} ${r.lastOffset} ${hash(batch)}`);
        // Retry only while the batch is among the last PRODUCER_BATCHES_RETAINED the broker remembers.
        if (isIdempotent && idempotentIssued - index <= PRODUCER_BATCHES_RETAINED && random() < 0.3) await retry(log, baseSequence, records, r);
      });
      const tracked = p.catch((err) => {
        say(`error ${(err as Error).message}`);
        process.exit(1);
      }).finally(() => inflight.delete(tracked));
      inflight.add(tracked);
    }
    await Promise.race(inflight);
  }
}

void main();
