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
  const records = new Map<number, OutboxRecord>();
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
        return { producer: producer && copyProducer(producer), records: byId(records), batches: byId(batches) };
      },
      async addRecords(list) {
        // NB: indexed loops: for…of allocated an iterator per record on the producer's hot path.
        for (let i = 0; i < list.length; i++) records.set(list[i].id, list[i]);
      },
      async freeze(list, state) {
        for (const b of list) {
          batches.set(b.id, b);
          for (let i = 0, ids = b.recordIds; i < ids.length; i++) records.delete(ids[i]);
        }
        producer = copyProducer(state);
      },
      async deleteBatches(ids) {
        for (const id of ids) batches.delete(id);
      },
      async deleteRecords(ids) {
        for (const id of ids) records.delete(id);
      },
      async saveProducer(state) {
        producer = copyProducer(state);
      },
    },
    close() {},
  };
}
