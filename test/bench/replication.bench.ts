/**
 * `npm run bench -- replication`: the replication data path alone, for
 * comparing changes to server/src/replication/ (cluster.bench.ts measures
 * the whole broker). Three replicas of each partition in THIS process (real
 * PartitionLogs on disk, ReplicationServers and PeerLinks over real TCP on
 * 127.0.0.1; the one fake is an in-memory IsrStore doing etcd's
 * compare-and-swap), replication factor 3, minInsyncReplicas 2, leaders
 * spread over the three brokers. A fixed amount of acks=-1 appends of
 * 1,000 × 100 B batches (BENCH_MB) with BENCH_CONCURRENCY appends in flight
 * per partition; it reports records/s, the CPU this process spent per MB
 * (user + system: every replica's work, one event loop for all three, so
 * records/s is bound by one core), the group-commit fdatasyncs per MB and
 * the mark-compact GCs.
 * NB: CPU per MB is the figure to compare between two versions; run each a
 * few times, interleaved, on a shared machine.
 * Last line: `{"bench":"replication",...}`.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { PerformanceObserver, constants as perfConstants } from 'node:perf_hooks';
import { join } from 'node:path';
import { encodeRecordBatch, validateRecords } from '@runnel/client/codec';
import type { AlterIsrResult, IsrStore, VersionedLeadership } from '../../server/src/cluster/cluster-state.ts';
import { PartitionLog, nativeCrc } from '../../server/src/log/partition-log.ts';
import type { TopicInfo } from '../../server/src/metadata/topic-info.ts';
import { PeerLinks, ReplicaPartition, ReplicationServer } from '../../server/src/replication/index.ts';
import { TEST_LINK_KEY } from '../../server/src/replication/testing/link-key.ts';

const env = (name: string, fallback: number): number => Number(process.env[name] ?? fallback);
const totalMB = env('BENCH_MB', 300);
const partitions = env('BENCH_PARTITIONS', 3);
const concurrency = env('BENCH_CONCURRENCY', 16);
const RECORDS_PER_BATCH = 1000;
const RECORD_BYTES = 100;
const BROKERS = [1, 2, 3];
/** Unmeasured appends first (JIT, first segment files). */
const WARM_UP_MB = 30;

/** etcd's compare-and-swap on a partition key's revision, in memory. */
class MemoryIsrStore implements IsrStore {
  readonly #current = new Map<string, VersionedLeadership>();
  set(l: VersionedLeadership): void { this.#current.set(`${l.topicId}/${l.partition}`, l); }
  async alterIsr(expected: VersionedLeadership, isr: number[]): Promise<AlterIsrResult> {
    const key = `${expected.topicId}/${expected.partition}`;
    const now = this.#current.get(key)!;
    if (now.revision !== expected.revision) return { ok: false, reason: 'fenced' };
    const next = { ...now, isr, revision: String(Number(now.revision) + 1) };
    this.#current.set(key, next);
    return { ok: true, leadership: next };
  }
}

const root = await mkdtemp(join(tmpdir(), 'runnel-bench-replication-'));
const ports = new Map<number, number>();
const directory = { replicationAddress: (id: number) => (ports.has(id) ? { host: '127.0.0.1', port: ports.get(id)! } : undefined) };
const isrStore = new MemoryIsrStore();
const servers = new Map<number, ReplicationServer>();
const links = new Map<number, PeerLinks>();
for (const id of BROKERS) {
  const server = new ReplicationServer({ linkKey: TEST_LINK_KEY, brokerId: id });
  ports.set(id, (await server.listen()).port);
  servers.set(id, server);
  links.set(id, new PeerLinks({ linkKey: TEST_LINK_KEY, brokerId: id, directory }));
}

let fsyncs = 0;
/**
 * Mark-compact GCs. NB: the heap stays ~12 MB; what starts them is ArrayBuffer
 * churn (V8 counts it as external memory): every batch copy, fetch answer
 * read and frame assembled is a new ArrayBuffer.
 */
let majorGcs = 0;
let majorGcMs = 0;
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) {
    if ((e as { detail?: { kind?: number } }).detail?.kind !== perfConstants.NODE_PERFORMANCE_GC_MAJOR) continue;
    majorGcs++;
    majorGcMs += e.duration;
  }
}).observe({ entryTypes: ['gc'] });
const replicas: ReplicaPartition[] = [];
const leaders: ReplicaPartition[] = [];
for (let p = 0; p < partitions; p++) {
  const topic: TopicInfo = { name: 'bench', topicId: 'bench-topic', partitions, replicationFactor: 3, retentionMs: -1, retentionBytes: -1, createdAtMs: 0 };
  const order = BROKERS.map((_, i) => BROKERS[(p + i) % BROKERS.length]);
  const leadership: VersionedLeadership = { topicId: topic.topicId, partition: p, leader: order[0], leaderEpoch: 1, isr: order, replicas: order, revision: '1' };
  isrStore.set(leadership);
  const here: ReplicaPartition[] = [];
  for (const id of BROKERS) {
    const log = await PartitionLog.open(join(root, `broker-${id}`, `p${p}`), { isReplicated: true, limits: { maxSegmentBytes: 1024 * 1024 * 1024 } });
    log.onFlush(() => { fsyncs++; });
    const replica = new ReplicaPartition({ topic, partition: p, minInsyncReplicas: 2, log, brokerId: id, links: links.get(id)!, isrStore, server: servers.get(id)!, warn: (m) => console.log(`[broker ${id} p${p}] ${m}`) });
    here.push(replica);
    replicas.push(replica);
  }
  for (const r of here) await r.applyLeadership(leadership);
  leaders.push(here[BROKERS.indexOf(order[0])]);
}

const value = new Uint8Array(RECORD_BYTES).fill(0x78);
const template = encodeRecordBatch({ records: Array.from({ length: RECORDS_PER_BATCH }, () => ({ value })) });
const validated = validateRecords(template, 0, { crc: nativeCrc });
if (!validated.ok) throw new Error(`template batch: ${validated.message}`);
const header = validated.value;
const batchMB = (RECORDS_PER_BATCH * RECORD_BYTES) / 1e6;

/** Appends `mb` MB over all partitions, `concurrency` in flight each; resolves with the records acknowledged. */
async function load(mb: number): Promise<number> {
  const batchesPerPartition = Math.ceil(mb / batchMB / partitions);
  let acked = 0;
  await Promise.all(leaders.flatMap((leader) => {
    let left = batchesPerPartition;
    return Array.from({ length: concurrency }, async () => {
      while (left > 0) {
        left--;
        // NB: a copy per append, as the broker's copy out of the uWS message: the log writes offsets into the bytes it is given.
        await leader.append(template.slice(), { acks: -1, header });
        acked += RECORDS_PER_BATCH;
      }
    });
  }));
  return acked;
}

try {
  await load(WARM_UP_MB);
  fsyncs = 0;
  majorGcs = 0;
  majorGcMs = 0;
  const cpuBefore = process.cpuUsage();
  const startedMs = performance.now();
  const acked = await load(totalMB);
  const elapsedSec = (performance.now() - startedMs) / 1000;
  const cpu = process.cpuUsage(cpuBefore);
  const mb = (acked * RECORD_BYTES) / 1e6;
  const cpuMsPerMB = (cpu.user + cpu.system) / 1000 / mb;
  const recordsPerSec = Math.round(acked / elapsedSec);
  console.log(`replication (3 replicas in one process, ${partitions} partitions, ${concurrency} acks=-1 appends in flight each): ${recordsPerSec.toLocaleString()} records/s, ${cpuMsPerMB.toFixed(2)} CPU-ms per MB (user ${(cpu.user / 1000 / mb).toFixed(2)}, system ${(cpu.system / 1000 / mb).toFixed(2)}), ${(fsyncs / mb).toFixed(2)} fdatasyncs per MB, ${(majorGcs / elapsedSec).toFixed(1)} mark-compact GCs/s (${(majorGcMs / elapsedSec).toFixed(0)} ms/s on the main thread), ${mb.toFixed(0)} MB in ${elapsedSec.toFixed(1)} s`);
  console.log(JSON.stringify({
    bench: 'replication', partitions, concurrency, recordsPerSec, cpuMsPerMB: Number(cpuMsPerMB.toFixed(3)), fsyncsPerMB: Number((fsyncs / mb).toFixed(3)),
    majorGcsPerMB: Number((majorGcs / mb).toFixed(4)),
  }));
} finally {
  for (const r of replicas) await r.close();
  for (const s of servers.values()) await s.close();
  for (const l of links.values()) l.close();
  await rm(root, { recursive: true, force: true });
}
process.exit(0);
