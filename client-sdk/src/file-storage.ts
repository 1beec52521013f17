/**
 * File Storage for Node services (`@runnel/client/node`; uses node:fs, never
 * imported by the browser entry). The whole state lives in memory and is
 * rewritten to `<dir>/runnel-state.json` by write-temp + fsync + rename, so a
 * crash leaves the old or the new file, never a torn one. Writes are
 * coalesced: one in flight, the next carries every change made meanwhile;
 * a method resolves once a write covering its change is durable.
 * Materialized states (`states`) are kept as JSON text taken when `putState`
 * is called, beside the offsets in the same file: one write, both or neither.
 * NB: suited to outboxes of thousands of records, not millions.
 * One owner: `<dir>/runnel.lock` holds the owning process id while the
 * storage is open; a second open (this or another live process) is refused,
 * because two clients on one outbox would reuse each other's record ids and
 * sequence numbers. A lock left by a dead process is taken over.
 */
import { mkdir, open, readFile, rename, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { RunnelError } from './codec/error-codes.ts';
import type { FrozenBatch, OutboxRecord, ProducerState, Storage, StoredOffset } from './storage.ts';
import { VERBOSE } from '#verbose';

/** A state snapshot as stored: `stateJson` is the state's JSON when `putState` was called. */
interface StoredState { stateJson: string; offsets: [number, StoredOffset][]; recordCount: number }

interface FileState {
  offsets: Record<string, Record<number, StoredOffset>>;
  records: Record<number, OutboxRecord>;
  batches: Record<number, FrozenBatch>;
  producer: ProducerState | null;
  /** By JSON [name, topic]; absent in files written before states existed. */
  states?: Record<string, StoredState>;
}

const BYTES_TAG = '$b64';

function replacer(_key: string, value: unknown): unknown {
  return value instanceof Uint8Array ? { [BYTES_TAG]: Buffer.from(value).toString('base64') } : value;
}
function reviver(_key: string, value: unknown): unknown {
  if (value !== null && typeof value === 'object' && BYTES_TAG in value) {
    return new Uint8Array(Buffer.from((value as Record<string, string>)[BYTES_TAG], 'base64'));
  }
  return value;
}

async function readState(path: string): Promise<FileState> {
  try {
    return JSON.parse(await readFile(path, 'utf8'), reviver) as FileState;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { offsets: {}, records: {}, batches: {}, producer: null };
    throw error;
  }
}

/**
 * @example const storage = await fileStorage('./runnel-client'); createClient({ urls, WebSocket, storage })
 */
/** Takes `<dir>/runnel.lock` for this process; refuses when a live process (this one included) holds it. */
async function lockDir(dir: string): Promise<() => Promise<void>> {
  const lockPath = join(dir, 'runnel.lock');
  for (let attempt = 0; ; attempt++) {
    try {
      await writeFile(lockPath, String(process.pid), { flag: 'wx' });
      return () => unlink(lockPath).catch(() => {});
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST' || attempt > 0) throw error;
    }
    const pid = Number(await readFile(lockPath, 'utf8').catch(() => ''));
    if (Number.isInteger(pid) && pid > 0 && isProcessAlive(pid)) {
      throw new RunnelError('INVALID_REQUEST', VERBOSE ? `client storage ${dir} is in use by process ${pid}; give each client its own directory` : '');
    }
    await unlink(lockPath).catch(() => {}); // stale: its process is gone
  }
}

/** Whether `pid` is a live process (EPERM: alive, someone else's); the server's port reservations use it too. */
export function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export async function fileStorage(dir: string): Promise<Storage> {
  await mkdir(dir, { recursive: true });
  const unlock = await lockDir(dir);
  const path = join(dir, 'runnel-state.json');
  const state = await readState(path).catch(async (error) => { await unlock(); throw error; });
  let writing: Promise<void> | null = null;
  let next: Promise<void> | null = null;

  const writeNow = async (): Promise<void> => {
    const tmp = `${path}.tmp`;
    const handle = await open(tmp, 'w');
    try {
      await handle.writeFile(JSON.stringify(state, replacer));
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(tmp, path);
    // The rename is durable once the directory entry is: fsync the directory too (POSIX).
    const dirHandle = await open(dir, 'r');
    try { await dirHandle.sync(); } finally { await dirHandle.close(); }
  };
  /** Resolves once a write started after this call is durable. */
  const persist = (): Promise<void> => {
    if (next) return next;
    if (!writing) {
      writing = writeNow().finally(() => { writing = null; });
      return writing;
    }
    next = writing.catch(() => {}).then(() => { next = null; return persist(); });
    return next;
  };
  const offsetKey = (consumerId: string, topic: string): string => JSON.stringify([consumerId, topic]);
  const sorted = <T extends { id: number }>(o: Record<number, T>): T[] => Object.values(o).sort((a, b) => a.id - b.id);

  return {
    offsets: {
      async getOffsets(consumerId, topic) {
        const stored = state.offsets[offsetKey(consumerId, topic)] ?? {};
        return new Map(Object.entries(stored).map(([p, v]) => [Number(p), { ...v }]));
      },
      putOffsets(consumerId, topic, offsets) {
        const stored = (state.offsets[offsetKey(consumerId, topic)] ??= {});
        for (const [partition, value] of offsets) stored[partition] = { ...value };
        return persist();
      },
      deleteOffsets(consumerId, topic) {
        delete state.offsets[offsetKey(consumerId, topic)];
        return persist();
      },
    },
    states: {
      async getState(name, topic) {
        const stored = state.states?.[offsetKey(name, topic)];
        return stored ? { state: JSON.parse(stored.stateJson), offsets: new Map(stored.offsets.map(([p, o]) => [p, { ...o }])), recordCount: stored.recordCount } : null;
      },
      putState(name, topic, snapshot) {
        // NB: serialized now: the write is coalesced and may run later, after the caller changed its state.
        (state.states ??= {})[offsetKey(name, topic)] = {
          stateJson: JSON.stringify(snapshot.state), offsets: [...snapshot.offsets].map(([p, o]) => [p, { ...o }]), recordCount: snapshot.recordCount,
        };
        return persist();
      },
      deleteState(name, topic) {
        if (state.states) delete state.states[offsetKey(name, topic)];
        return persist();
      },
    },
    outbox: {
      async load() {
        return { producer: state.producer && structuredClone(state.producer), records: sorted(state.records), batches: sorted(state.batches) };
      },
      addRecords(records) {
        for (const r of records) state.records[r.id] = r;
        return persist();
      },
      freeze(batches, producer) {
        for (const b of batches) {
          state.batches[b.id] = b;
          for (const id of b.recordIds) delete state.records[id];
        }
        state.producer = structuredClone(producer);
        return persist();
      },
      deleteBatches(ids) {
        for (const id of ids) delete state.batches[id];
        return persist();
      },
      deleteRecords(ids) {
        for (const id of ids) delete state.records[id];
        return persist();
      },
      saveProducer(producer) {
        state.producer = structuredClone(producer);
        return persist();
      },
    },
    async close() {
      while (writing || next) await (next ?? writing);
      await unlock();
    },
  };
}
