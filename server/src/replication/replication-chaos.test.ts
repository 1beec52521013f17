/**
 * A seeded random schedule over three real replicas (testing/replica-cluster.ts):
 * idempotent acks=all producers retrying through failures, replicas stopped
 * and restarted, leaders moved, the controller electing from the live ISR
 * (never an unclean election). Then a checker over the whole history: every
 * acknowledged batch is in the final log exactly once at its acknowledged
 * offsets, in order per producer; the replicas are byte-identical; no
 * consumer of any replica saw a batch that is not in the final log, or
 * offsets going backwards. Prints its seed; RUNNEL_CHAOS_SEED replays one
 * (the schedule; thread timing still varies), RUNNEL_CHAOS_DEBUG=1 prints
 * each step and the replicas every 2 s.
 */
import assert from 'node:assert/strict';
import { open, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { iterateBatches, RunnelError, type BatchHeader } from '@runnel/client/codec';
import type { VisibleBatch } from '../partition/partition.ts';
import { batch, Cluster, logBytes, until, type Node } from './testing/replica-cluster.ts';

const seed = Number(process.env.RUNNEL_CHAOS_SEED ?? Date.now() % 2 ** 31);
console.log(`# replication chaos seed ${seed} (replay: RUNNEL_CHAOS_SEED=${seed})`);

/** mulberry32: deterministic schedule for a seed. */
function rng(s: number): () => number {
  let a = s >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

/** Answers a producer retries (the same batch, the same sequence). */
const RETRIABLE = new Set(['NOT_LEADER_OR_FOLLOWER', 'NOT_ENOUGH_REPLICAS', 'NOT_ENOUGH_REPLICAS_AFTER_APPEND', 'REQUEST_TIMED_OUT', 'LIMIT_EXCEEDED', 'SHUTTING_DOWN', 'KAFKA_STORAGE_ERROR']);

interface Acked { producerId: number; baseSequence: number; baseOffset: number; lastOffset: number }

test('chaos: acknowledged batches survive stops, restarts and leader moves exactly once; replicas agree; no phantom reads', async () => {
  const random = rng(seed);
  const jitter = rng(seed ^ 0x5bd1e995);
  const c = await Cluster.start([1, 2, 3], { replicaLagTimeMs: 600, replicationTickMs: 30, replicaFetchMaxWaitMs: 200, replicationTimeoutMs: 3000, alterIsrRetryMs: 50 });
  const faults = { stop: 0, start: 0, move: 0, elect: 0, offline: 0, tornTail: 0, flippedTail: 0 };
  /** A stopped replica's newest segment loses its last bytes or has a bit flipped near its end (recovery must cut it). */
  const damageTail = async (dir: string) => {
    const names = (await readdir(dir)).filter((n) => n.endsWith('.log')).sort();
    if (names.length === 0) return;
    const path = join(dir, names[names.length - 1]);
    const size = (await stat(path)).size;
    if (size < 200) return;
    const f = await open(path, 'r+');
    try {
      if (random() < 0.5) {
        await f.truncate(size - 1 - Math.floor(random() * 150));
        faults.tornTail++;
      } else {
        const at = size - 1 - Math.floor(random() * 150);
        const b = Buffer.alloc(1);
        await f.read(b, 0, 1, at);
        b[0] ^= 1 << Math.floor(random() * 8);
        await f.write(b, 0, 1, at);
        faults.flippedTail++;
      }
    } finally {
      await f.close();
    }
  };
  const acked: Acked[] = [];
  const unexpected: string[] = [];
  /** Every batch any replica's consumers were shown: base offset → bytes. */
  const seen: { node: number; batch: VisibleBatch }[] = [];
  const backwards: string[] = [];
  let isRunning = true;

  const isLive = (id: number) => c.node(id).replica !== null;
  const watch = (n: Node) => {
    let last = -1;
    n.replica!.onVisible((b) => {
      if (b.baseOffset <= last) backwards.push(`broker ${n.id}: ${b.baseOffset} after ${last}`);
      last = b.lastOffset;
      seen.push({ node: n.id, batch: b });
    });
  };
  for (const n of c.nodes.values()) watch(n);

  /** The controller: the leader gone → the first live ISR member leads (ISR minus the dead leader), else offline; offline → back when an ISR member is. */
  const reconcile = () => {
    const cur = c.store.current;
    if (cur.leader >= 0 && isLive(cur.leader)) return;
    const candidate = cur.replicas.find((id) => id !== cur.leader && cur.isr.includes(id) && isLive(id));
    if (candidate !== undefined) {
      c.store.elect(candidate, cur.isr.filter((id) => id !== cur.leader || cur.leader < 0));
      faults.elect++;
    } else if (cur.leader >= 0) {
      c.store.elect(-1, cur.isr);
      faults.offline++;
    }
  };

  const produceLoop = async (producerId: number) => {
    for (let sequence = 0; isRunning; sequence += 5) {
      const b = batch(5, { producerId, producerEpoch: 0, baseSequence: sequence, tag: producerId });
      for (;;) {
        if (!isRunning) return;
        const leaderId = c.store.current.leader;
        const replica = leaderId >= 0 ? c.node(leaderId).replica : null;
        if (!replica || replica.role !== 'leader') {
          await new Promise((r) => setTimeout(r, 10));
          continue;
        }
        try {
          const r = await replica.append(b.bytes.slice(), { acks: -1, header: b.header as BatchHeader });
          acked.push({ producerId, baseSequence: sequence, baseOffset: r.baseOffset, lastOffset: r.lastOffset });
          break;
        } catch (e) {
          if (!(e instanceof RunnelError) || !RETRIABLE.has(e.errorName)) {
            unexpected.push(`producer ${producerId} sequence ${sequence}: ${(e as Error).message}`);
            return;
          }
          await new Promise((r) => setTimeout(r, 5 + jitter() * 20));
        }
      }
    }
  };
  const producers = [7, 8, 9].map(produceLoop);
  const debug = process.env.RUNNEL_CHAOS_DEBUG ? setInterval(() => {
    console.log(JSON.stringify({ store: c.store.current, nodes: [...c.nodes.values()].map((n) => n.replica ? { id: n.id, role: n.replica.role, epoch: n.replica.leaderEpoch, end: n.log.logEndOffset, durable: n.log.durableEndOffset, hw: n.log.highWatermark } : { id: n.id, stopped: true }), acked: acked.length, warnings: c.warnings.slice(-5) }));
  }, 2000) : null;

  try {
    for (let step = 0; step < 24; step++) {
      const roll = random();
      if (process.env.RUNNEL_CHAOS_DEBUG) console.log(`step ${step} roll ${roll.toFixed(2)} leader ${c.store.current.leader} epoch ${c.store.current.leaderEpoch} isr ${c.store.current.isr}`);
      const live = [...c.nodes.keys()].filter(isLive);
      const stopped = [...c.nodes.keys()].filter((id) => !isLive(id));
      if (roll < 0.3 && live.length > 1) {
        const id = live[Math.floor(random() * live.length)];
        await c.node(id).stop();
        faults.stop++;
        // Detection takes a moment: the controller acts 0-150 ms later.
        await new Promise((r) => setTimeout(r, random() * 150));
        reconcile();
      } else if (roll < 0.6 && stopped.length > 0) {
        const n = c.node(stopped[Math.floor(random() * stopped.length)]);
        // Out of the ISR (stopped longer than replicaLagTimeMs): its tail may be torn or corrupt when it returns.
        if (!c.store.current.isr.includes(n.id) && random() < 0.6) await damageTail(n.dir);
        await n.start();
        watch(n);
        faults.start++;
        reconcile();
      } else if (roll < 0.75) {
        // Preferred-leader style move to another live ISR member (the old leader is alive: it becomes a follower).
        const cur = c.store.current;
        const to = cur.isr.find((id) => id !== cur.leader && isLive(id));
        if (to !== undefined && cur.leader >= 0) {
          c.store.elect(to, cur.isr);
          faults.move++;
        }
      }
      await new Promise((r) => setTimeout(r, 100 + random() * 300));
    }
    // Heal: everyone back, producers stop, the cluster converges.
    for (const id of c.nodes.keys()) {
      if (!isLive(id)) {
        await c.node(id).start();
        watch(c.node(id));
      }
    }
    reconcile();
    await new Promise((r) => setTimeout(r, 300));
    if (process.env.RUNNEL_CHAOS_DEBUG) console.log('healed; stopping producers');
    isRunning = false;
    await Promise.all(producers);
    if (process.env.RUNNEL_CHAOS_DEBUG) console.log('producers stopped');
    await until('a leader with the full ISR, every replica at its end', () => {
      const cur = c.store.current;
      if (cur.leader < 0 || cur.isr.length !== 3) return false;
      const end = c.node(cur.leader).log.logEndOffset;
      return [...c.nodes.values()].every((n) => n.log.logEndOffset === end && n.log.highWatermark === end);
    }, 20_000);
    console.log(`# faults ${JSON.stringify(faults)}, ${acked.length} batches acknowledged, ${seen.length} seen by consumers`);

    assert.deepEqual(unexpected, []);
    assert.deepEqual(backwards, []);
    const leaderLog = c.node(c.store.current.leader).log;
    const final = await logBytes(leaderLog);
    for (const n of c.nodes.values()) assert.ok(final.equals(await logBytes(n.log)), `broker ${n.id} is byte-identical to the leader`);

    // Every batch of the final log, by offset and by producer sequence.
    const byOffset = new Map<number, Uint8Array>();
    const bySequence = new Map<string, number[]>();
    for (const b of iterateBatches(final)) {
      assert.ok(b.ok, 'the final log passes its CRCs');
      const { at, header } = b.value;
      byOffset.set(header.baseOffset, final.subarray(at, at + header.totalBytes));
      const key = `${header.producerId}/${header.baseSequence}`;
      bySequence.set(key, [...(bySequence.get(key) ?? []), header.baseOffset]);
    }
    for (const [key, offsets] of bySequence) assert.equal(offsets.length, 1, `producer batch ${key} stored once, found at ${offsets}`);
    for (const a of acked) {
      assert.deepEqual(bySequence.get(`${a.producerId}/${a.baseSequence}`), [a.baseOffset], `acknowledged ${a.producerId}/${a.baseSequence} at ${a.baseOffset} is in the final log there`);
    }
    for (const pid of [7, 8, 9]) {
      const offsets = acked.filter((a) => a.producerId === pid).map((a) => a.baseOffset);
      assert.deepEqual(offsets, [...offsets].sort((x, y) => x - y), `producer ${pid}: acknowledgement order = log order`);
    }
    for (const { node, batch: b } of seen) {
      const stored = byOffset.get(b.baseOffset);
      assert.ok(stored && Buffer.from(stored).equals(Buffer.from(b.batch)), `broker ${node} showed a batch at ${b.baseOffset} that the final log does not hold (phantom read)`);
    }
    assert.ok(acked.length > 20, `${acked.length} acknowledged: the schedule made progress`);
  } finally {
    if (debug) clearInterval(debug);
    isRunning = false;
    await Promise.all(producers);
    await c.close();
  }
});
