/**
 * In-memory Storage: the default in Node and the reference implementation of
 * the storage contract. It survives a client's close (pass the same object
 * to a new client to simulate a reload) but not the process.
 */
import type { FrozenBatch, OutboxRecord, ProducerState, Storage, StoredOffset } from './storage.ts';

/**
 * @example const storage = memoryStorage(); createClient({ urls, WebSocket, storage })
 */
export function memoryStorage(): Storage {
  const offsets = new Map<string, Map<number, StoredOffset>>();
  const records = new RecordList();
  const batches = new Map<number, FrozenBatch>();
  let producer: ProducerState | null = null;
  const key = (consumerId: string, topic: string): string => JSON.stringify([consumerId, topic]);
  const byId = <T extends { id: number }>(m: Map<number, T>): T[] => [...m.values()].sort((a, b) => a.id - b.id);
  const copyProducer = (p: ProducerState): ProducerState => ({ ...p, sequences: { ...p.sequences } });
  return {
    offsets: {
      async getOffsets(consumerId, topic) {
        return new Map(offsets.get(key(consumerId, topic)));
      },
      async putOffsets(consumerId, topic, entries) {
        const k = key(consumerId, topic);
        const stored = offsets.get(k) ?? new Map<number, StoredOffset>();
        for (const [partition, value] of entries) stored.set(partition, { ...value });
        offsets.set(k, stored);
      },
      async deleteOffsets(consumerId, topic) {
        offsets.delete(key(consumerId, topic));
      },
    },
    outbox: {
      async load() {
        return { producer: producer && copyProducer(producer), records: records.all(), batches: byId(batches) };
      },
      async addRecords(list) {
        // NB: indexed loops: for…of allocated an iterator per record on the producer's hot path.
        for (let i = 0; i < list.length; i++) records.add(list[i]);
      },
      async freeze(list, state) {
        for (const b of list) {
          batches.set(b.id, b);
          records.delete(b.recordIds);
        }
        producer = copyProducer(state);
      },
      async deleteBatches(ids) {
        for (const id of ids) batches.delete(id);
      },
      async deleteRecords(ids) {
        records.delete(ids);
      },
      async saveProducer(state) {
        producer = copyProducer(state);
      },
    },
    close() {},
  };
}

/**
 * Stored records in ascending id order (a producer adds them in id order and freezes the oldest first): an add is
 * a push and a delete a search from where the last one ended, with no hash-table entry per record (a Map's
 * rehashing under a steady add/delete churn was ~10 % of the producer's CPU). A deleted record leaves a hole until
 * holes are half the list.
 */
class RecordList {
  #ids: number[] = [];
  #records: (OutboxRecord | undefined)[] = [];
  #holes = 0;
  /** Where the last delete ended: the next one usually starts there. */
  #cursor = 0;

  add(record: OutboxRecord): void {
    const ids = this.#ids, n = ids.length;
    if (n === 0 || record.id > ids[n - 1]) {
      ids.push(record.id);
      this.#records.push(record);
      return;
    }
    const at = this.#search(record.id);
    if (ids[at] === record.id) {
      if (this.#records[at] === undefined) this.#holes--;
      this.#records[at] = record; // the same id again: replaced, as a keyed put does
      return;
    }
    ids.splice(at, 0, record.id);
    this.#records.splice(at, 0, record);
  }

  delete(ids: readonly number[]): void {
    const own = this.#ids, records = this.#records;
    for (let i = 0; i < ids.length; i++) {
      let at = this.#cursor;
      if (own[at] !== ids[i]) at = this.#search(ids[i]);
      if (own[at] === ids[i] && records[at] !== undefined) {
        records[at] = undefined;
        this.#holes++;
      }
      this.#cursor = at + 1;
    }
    if (this.#holes > 32 && this.#holes * 2 >= own.length) this.#compact();
  }

  all(): OutboxRecord[] {
    return this.#records.filter((r) => r !== undefined);
  }

  /** The first position whose id is ≥ `id`. */
  #search(id: number): number {
    let lo = 0, hi = this.#ids.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.#ids[mid] < id) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  #compact(): void {
    this.#records = this.all();
    this.#ids = this.#records.map((r) => r!.id);
    this.#holes = this.#cursor = 0;
  }
}
