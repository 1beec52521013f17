/**
 * State folded from a topic (`@runnel/client/materialize`): event sourcing
 * and live dashboards. `materialize(client, topic, reducer, options)` folds
 * every record into a state and keeps, in one snapshot written atomically
 * (one IndexedDB put; a file written to a temp file, fsynced, renamed), the
 * state with the per-partition next offsets it covers.
 *
 * Invariant: the stored state is the fold of exactly the records below the
 * stored offsets. The offsets live in the snapshot, not in the client's
 * offset store, so they never move without the state: between snapshots
 * (`snapshotEvery`) nothing is stored, and a reload or crash folds again,
 * from the last snapshot, the records after it — each record exactly once.
 *
 * Built on the consumer's batch handler with an offset store of its own (the
 * same `internals()` hook `@runnel/client/group` uses): the subscription's
 * offset writes only tell where it has handled to and each partition's topic
 * id; they are stored with the next snapshot.
 *
 * Not recovered (retention ran past the stored offset, topic recreated): a
 * fold that lost records cannot be mended record by record, so it is
 * rebuilt: `initial` again, from `earliest`, with a 'rebuild' event naming
 * the reason (and the consumer's NotRecoveredEvent).
 */
import { RunnelError } from './codec/error-codes.ts';
import type { RunnelConsumer } from './consumer-client.ts';
import type { ConsumerRecord } from './consumer-record.ts';
import { Subscription, type NotRecoveredEvent, type StartFrom } from './consumer.ts';
import { Emitter } from './events.ts';
import type { OffsetStore, StateStore, StoredOffset } from './storage.ts';
import { toTopic, type TopicRef } from './topic.ts';
import { VERBOSE } from '#verbose';

export type { StateSnapshot, StateStore } from './storage.ts';

/** Folds one record into the state; may return the same (mutated) object. NB: if it throws, it must leave `state` as it was. */
export type Reducer<S, T> = (state: S, record: ConsumerRecord<T>) => S;

/** Where a fresh fold starts (no snapshot stored, or `rebuild()`): 'earliest' (default), 'latest', or the first record at or after a time. */
export type MaterializeFrom = 'earliest' | 'latest' | { timestampMs: number };

export interface MaterializeOptions<S> {
  /** The state before any record: a value (copied with structuredClone for each fresh fold) or a factory. */
  initial: S | (() => S);
  /** Where snapshots live: `storage.states` of `indexedDbStorage()` or `fileStorage(dir)`. */
  store: StateStore;
  /** Snapshot name (one per fold of a topic). Default: the topic name. */
  name?: string;
  /**
   * Store a snapshot once this many records were folded since the last, or
   * this many ms after the first unsaved record, whichever comes first.
   * Default `{ records: 1 }`: after every received batch. Larger values cost
   * fewer writes and refold more records after a crash, never count twice.
   */
  snapshotEvery?: { records?: number; ms?: number };
  /** Where a fresh fold starts. A stored snapshot resumes where it stopped instead. */
  from?: MaterializeFrom;
  /** Partitions to fold (default: all). */
  partitions?: number[];
  signal?: AbortSignal;
  /** For a state that is not plain data (a class): what to store (`encode`, called when a snapshot is taken) and how to get it back. */
  codec?: { encode(state: S): unknown; decode(stored: unknown): S };
}

export interface RebuildEvent {
  /** Why the fold started again from `initial`. */
  reason: NotRecoveredEvent['reason'] | 'REQUESTED';
  /** The consumer's event, when the stored offsets could not be served. */
  notRecovered?: NotRecoveredEvent;
  from: MaterializeFrom;
}

export interface MaterializeEvents<S> {
  /** After each received batch was folded: the new state and the records folded into it. */
  change: { state: S; records: ConsumerRecord<unknown>[] };
  rebuild: RebuildEvent;
  /** A snapshot is durable: the state after `recordCount` records. */
  snapshot: { recordCount: number; offsets: ReadonlyMap<number, StoredOffset> };
  error: RunnelError;
}

/**
 * A running fold. `ready` resolves once the snapshot is loaded and every
 * partition is subscribed; `closed` settles when it ends (rejects with a
 * reducer's or the subscription's error).
 */
export class Materialized<S, T = unknown> extends Emitter<MaterializeEvents<S>> {
  readonly ready: Promise<void>;
  readonly closed: Promise<void>;
  readonly name: string;
  #state!: S;
  #recordCount = 0;
  /** Next offset per partition that `#state` covers: from the snapshot, the fold and the subscription's reports. */
  readonly #offsets = new Map<number, StoredOffset>();
  #sub: Subscription<T> | null = null;
  #partitions: number[] = [];
  /** Bumped at each (re)start: callbacks of an older subscription change nothing. */
  #generation = 0;
  #unsaved = 0;
  #timer: ReturnType<typeof setTimeout> | null = null;
  #saving: Promise<void> | null = null;
  #saveAgain = false;
  #stopped = false;
  #settle!: (error?: unknown) => void;
  readonly #topicName: string;
  readonly #every: { records: number; ms: number | null };

  constructor(private readonly client: RunnelConsumer, private readonly topic: TopicRef<any, T>, private readonly reducer: Reducer<S, T>, private readonly options: MaterializeOptions<S>) {
    super();
    this.#topicName = toTopic(topic).name;
    this.name = options.name ?? this.#topicName;
    const records = options.snapshotEvery?.records ?? (options.snapshotEvery?.ms === undefined ? 1 : Infinity);
    const ms = options.snapshotEvery?.ms ?? null;
    if (!(records >= 1) || (ms !== null && !(ms >= 0))) throw new RunnelError('INVALID_REQUEST', VERBOSE ? 'snapshotEvery: records must be ≥ 1 and ms ≥ 0' : '');
    this.#every = { records, ms };
    this.closed = new Promise<void>((resolve, reject) => (this.#settle = (e) => (e === undefined ? resolve() : reject(e))));
    this.closed.catch(() => {});
    // The client closing stops the fold; its storage closes right after, so the last snapshot is started now.
    const offState = client.on('statechange', ({ state }) => { if (state === 'closed') void this.#stop(undefined, true); });
    void this.closed.catch(() => {}).finally(offState);
    options.signal?.addEventListener('abort', () => void this.close(), { once: true });
    this.ready = this.#start();
    this.ready.catch((e) => this.#fail(e));
  }

  /** The current state (the fold of every record handled so far). */
  get state(): S {
    return this.#state;
  }

  /** Records folded into the state since it was `initial`. */
  get recordCount(): number {
    return this.#recordCount;
  }

  async #start(): Promise<void> {
    const snapshot = await this.options.store.getState(this.name, this.#topicName);
    if (this.#stopped) return;
    if (snapshot) {
      this.#state = this.options.codec ? this.options.codec.decode(snapshot.state) : (snapshot.state as S);
      this.#recordCount = snapshot.recordCount;
      for (const [p, o] of snapshot.offsets) this.#offsets.set(p, { ...o });
      await this.#subscribe('stored');
    } else {
      this.#state = this.#initial();
      await this.#subscribe(this.options.from ?? 'earliest');
    }
  }

  #initial(): S {
    const initial = this.options.initial;
    return typeof initial === 'function' ? (initial as () => S)() : structuredClone(initial);
  }

  async #subscribe(from: MaterializeFrom | 'stored'): Promise<void> {
    const generation = ++this.#generation;
    const { deps } = this.client.internals();
    this.#partitions = this.options.partitions ?? Array.from({ length: await deps.partitionCount(this.#topicName) }, (_, p) => p);
    if (generation !== this.#generation || this.#stopped) return;
    const view: OffsetStore = {
      getOffsets: async () => new Map(this.#offsets),
      putOffsets: async (_consumerId, _topic, entries) => { if (generation === this.#generation) this.#cover(entries); },
      deleteOffsets: async () => {},
    };
    const start: StartFrom = typeof from === 'object' ? { timestamp: from.timestampMs } : from;
    const sub = new Subscription<T>({ ...deps, offsets: view }, this.topic, null, {
      from: start, reset: 'earliest', consumerId: `materialize:${this.name}`, partitions: this.options.partitions,
      onNotRecovered: (event) => { if (generation === this.#generation) void this.#rebuild({ reason: event.reason, notRecovered: event, from: 'earliest' }); },
    }, (records) => { if (generation === this.#generation) this.#fold(records); });
    this.#sub = sub;
    sub.on('error', (e) => { if (generation === this.#generation) this.emit('error', e); });
    void sub.closed.catch((e) => { if (generation === this.#generation) this.#fail(e); });
    await sub.ready;
  }

  /** Takes the subscription's handled offsets (and topic ids) where they are ahead: everything below them is in the state. */
  #cover(entries: ReadonlyMap<number, StoredOffset>): void {
    for (const [p, o] of entries) {
      const known = this.#offsets.get(p);
      if (!known || o.offset >= known.offset) this.#offsets.set(p, { offset: o.offset, topicId: o.topicId || (known?.topicId ?? '') });
    }
  }

  /** Hot path: one received batch of one partition. The state and its offsets move together, record by record. */
  #fold(records: ConsumerRecord<T>[]): void {
    const p = records[0].partition;
    const topicId = this.#offsets.get(p)?.topicId ?? '';
    let folded = 0;
    try {
      for (const record of records) {
        this.#state = this.reducer(this.#state, record);
        this.#recordCount++;
        this.#offsets.set(p, { offset: record.offset + 1, topicId });
        folded++;
      }
    } finally {
      this.#unsaved += folded; // a reducer that threw leaves the records before it folded: close() stores them
    }
    this.emit('change', { state: this.#state, records });
    if (this.#unsaved >= this.#every.records) void this.#save();
    else if (this.#every.ms !== null && !this.#timer) this.#timer = setTimeout(() => { this.#timer = null; void this.#save(); }, this.#every.ms);
  }

  /**
   * Stores state + offsets now. One write in flight; a call meanwhile
   * makes one more write after it, with everything newer. NB: the store
   * copies the state synchronously in `putState`, so folding may go on.
   */
  #save(): Promise<void> {
    if (this.#saving) { this.#saveAgain = true; return this.#saving; }
    if (this.#timer) { clearTimeout(this.#timer); this.#timer = null; }
    this.#unsaved = 0;
    // Partitions the fold has not touched yet still need their resolved start stored (a 'latest' or time start).
    for (const p of this.#partitions) {
      const handled = this.#sub?.position(p);
      if (handled !== undefined) this.#cover(new Map([[p, { offset: handled, topicId: '' }]]));
    }
    const snapshot = { state: this.options.codec ? this.options.codec.encode(this.#state) : this.#state, offsets: new Map(this.#offsets), recordCount: this.#recordCount };
    this.#saving = this.options.store.putState(this.name, this.#topicName, snapshot)
      .then(() => this.emit('snapshot', { recordCount: snapshot.recordCount, offsets: snapshot.offsets }),
        (e) => this.emit('error', new RunnelError('KAFKA_STORAGE_ERROR', VERBOSE ? 'state snapshot write failed' : '', { cause: e })))
      .finally(() => {
        this.#saving = null;
        if (this.#saveAgain) { this.#saveAgain = false; void this.#save(); }
      });
    return this.#saving;
  }

  /** Stores a snapshot now (and waits for it). */
  async flush(): Promise<void> {
    await this.ready;
    while (this.#saving) await this.#saving;
    await this.#save();
  }

  /**
   * Discards the state and folds again from `initial`, starting at `from`
   * (default: the `from` option, else 'earliest') — e.g. replay the last hour.
   * @example await view.rebuild({ timestampMs: Date.now() - 3_600_000 });
   */
  rebuild(from: MaterializeFrom = this.options.from ?? 'earliest'): Promise<void> {
    return this.#rebuild({ reason: 'REQUESTED', from });
  }

  async #rebuild(event: RebuildEvent): Promise<void> {
    if (this.#stopped) return;
    const old = this.#sub;
    this.#generation++; // the old subscription's callbacks change nothing from here on
    this.emit('rebuild', event);
    await old?.unsubscribe();
    while (this.#saving) await this.#saving;
    if (this.#stopped) return;
    this.#state = this.#initial();
    this.#recordCount = 0;
    this.#offsets.clear();
    this.#sub = null;
    // The reset is stored before anything is folded: a crash now resumes a fresh fold, not the old offsets.
    await this.#save();
    await this.#subscribe(event.from);
  }

  #fail(error: unknown): void {
    const e = error instanceof RunnelError ? error : new RunnelError('UNKNOWN_SERVER_ERROR', VERBOSE ? 'materialize failed' : '', { cause: error });
    void this.#stop(e, false);
  }

  /** Stops folding and stores a last snapshot. */
  close(): Promise<void> {
    return this.#stop(undefined, false);
  }

  async #stop(error: unknown, clientClosing: boolean): Promise<void> {
    if (this.#stopped) return this.closed.catch(() => {});
    this.#stopped = true;
    this.#generation++;
    if (this.#timer) { clearTimeout(this.#timer); this.#timer = null; }
    const sub = this.#sub;
    // NB: when the client closes, its storage closes next: the write must be started before awaiting anything.
    const saved = this.#state !== undefined && (clientClosing || this.#unsaved > 0 || this.#saving) ? this.#save() : Promise.resolve();
    if (!clientClosing) await sub?.unsubscribe();
    await saved;
    while (this.#saving) await this.#saving;
    this.#settle(error);
  }
}

/**
 * Folds `topic` into a state kept with its offsets, exactly once across reloads and crashes.
 * @example
 * const storage = await indexedDbStorage({ name: 'dash' });
 * const client = createConsumer({ urls, storage });
 * const views = materialize(client, 'page-views', (n, rec) => n + 1, { initial: 0, store: storage.states!, snapshotEvery: { records: 500, ms: 1000 } });
 * views.on('change', ({ state }) => render(state));
 * views.on('rebuild', ({ reason }) => console.warn('folding again from earliest:', reason));
 */
export function materialize<S, T = unknown>(client: RunnelConsumer, topic: TopicRef<any, T>, reducer: Reducer<S, T>, options: MaterializeOptions<S>): Materialized<S, T> {
  return new Materialized<S, T>(client, topic, reducer, options);
}
