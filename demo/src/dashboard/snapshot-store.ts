/**
 * Where the dashboard keeps its aggregates between page loads: one
 * IndexedDB record holding the numbers *and* the per-partition offsets they
 * cover (ActivitySnapshot.nextOffsets). One `put` of one object is atomic,
 * so the stored numbers always describe exactly the records below the stored
 * offsets; that is what lets a reload resume without counting twice.
 */
import { openDB, type IDBPDatabase } from 'idb';
import type { ActivitySnapshot } from './aggregates.ts';

const DATABASE_NAME = 'runnel-demo-dashboard';
const STORE = 'snapshots';
const KEY = 'activity';

export class SnapshotStore {
  private constructor(private readonly db: IDBPDatabase) {}

  static async open(name = DATABASE_NAME): Promise<SnapshotStore> {
    const db = await openDB(name, 1, {
      upgrade(database) {
        if (!database.objectStoreNames.contains(STORE)) database.createObjectStore(STORE);
      },
    });
    return new SnapshotStore(db);
  }

  /** The stored snapshot, or undefined when there is none or it has an unknown version. */
  async load(): Promise<ActivitySnapshot | undefined> {
    const snapshot = (await this.db.get(STORE, KEY)) as ActivitySnapshot | undefined;
    return snapshot?.version === 1 ? snapshot : undefined;
  }

  async save(snapshot: ActivitySnapshot): Promise<void> {
    await this.db.put(STORE, snapshot, KEY);
  }

  close(): void {
    this.db.close();
  }
}
