/**
 * The suite's recording path end to end on one real broker (no cluster
 * needed): the workload's SDK producers and SDK + HTTP consumers and group
 * commits through a SIGKILL + restart of the broker, the final log over HTTP
 * and the replica read from its segment files; the checker passes that
 * history, and fails it (lost 1, phantom reads) once an acknowledged record
 * is removed from the final state.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { BrokerProcess } from '../e2e/harness/broker-process.ts';
import { checkHistory } from './history-checker.ts';
import { HistoryRecorder, type PartitionFinal } from './history.ts';
import { readStoredBatches, segmentFiles } from './segment-files.ts';
import { Workload } from './workload.ts';

const TOPIC = 'workload';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function finalState(broker: BrokerProcess, topicId: string): Promise<PartitionFinal[]> {
  const described = (await (await fetch(`${broker.url}/v1/topics/${TOPIC}`)).json()) as { partitions: { partition: number; highWatermark: number }[] };
  const out: PartitionFinal[] = [];
  for (const p of described.partitions) {
    const log: { offset: number; value: string }[] = [];
    for (let offset = 0; offset < p.highWatermark;) {
      const page = (await (await fetch(`${broker.url}/v1/topics/${TOPIC}/partitions/${p.partition}/records?offset=${offset}&maxRecords=2000`)).json()) as { records: { offset: number; value: string }[]; nextOffset: number };
      for (const r of page.records) log.push({ offset: r.offset, value: r.value });
      offset = page.nextOffset;
    }
    const batches = await readStoredBatches(await segmentFiles(join(broker.dataDir, 'topics', topicId, String(p.partition))));
    out.push({ topic: TOPIC, partition: p.partition, leader: 0, logStartOffset: 0, highWatermark: p.highWatermark, log, replicas: [{ brokerId: 0, batches }] });
  }
  return out;
}

test('workload through a broker SIGKILL + restart: the recorded history passes; removing an acknowledged record fails it', { timeout: 120_000 }, async () => {
  const broker = await BrokerProcess.start();
  let workload: Workload | undefined;
  try {
    const created = await fetch(`${broker.url}/v1/topics`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: TOPIC, partitions: 2, replicationFactor: 1 }) });
    assert.equal(created.status, 201);
    const { topicId } = (await created.json()) as { topicId: string };
    const recorder = new HistoryRecorder(7);
    workload = Workload.start({ topic: TOPIC, partitions: 2, ratePerSec: 150, wsUrls: [broker.wsUrl], httpUrls: [broker.url], recorder, group: 'wg', seed: 7 });
    const acked = () => recorder.records.filter((r) => r.outcome.kind === 'acked').length;
    const until = async (what: string, cond: () => boolean) => {
      const deadline = Date.now() + 60_000;
      while (!cond()) {
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}\n${broker.log()}`);
        await sleep(20);
      }
    };
    await until('100 acks', () => acked() >= 100);
    const killedAt = Date.now();
    recorder.fault({ kind: 'killLeader', atMs: killedAt, target: 'broker 0', ledPartitions: [{ topic: TOPIC, partition: 0 }, { topic: TOPIC, partition: 1 }] });
    await broker.kill();
    await broker.restart();
    const before = acked();
    await until('acks after the restart', () => acked() >= before + 100);
    assert.equal(await workload.stopProducing(30_000), 0, 'every send settled');
    const partitions = await finalState(broker, topicId);
    assert.deepEqual(await workload.waitConsumers(partitions.map((p) => p.highWatermark), 30_000), []);
    await workload.close();
    const history = recorder.finish(partitions, Date.now());
    const result = checkHistory(history);
    assert.deepEqual(result.messages, []);
    assert.ok(result.ok);
    assert.equal(result.acked, history.records.length);
    assert.ok(history.deliveries.length >= 2 * result.acked, 'both consumers saw everything');
    assert.ok(history.groupOffsets.some((e) => e.kind === 'committed') && history.groupOffsets.some((e) => e.kind === 'observed'), 'commits recorded');
    assert.equal(result.failovers.length, 2);
    assert.ok(result.failovers.every((f) => f.recovered && f.ms > 0));

    // The same history, with the last record of partition 0 gone from the final state: lost, and the consumers' reads of it are phantoms.
    const p0 = history.partitions.find((p) => p.partition === 0)!;
    const gone = p0.log.pop()!;
    p0.highWatermark -= 1;
    p0.replicas[0].batches = p0.replicas[0].batches.filter((b) => b.lastOffset < gone.offset);
    const broken = checkHistory(history);
    assert.equal(broken.ok, false);
    assert.equal(broken.lost, 1, broken.messages.join('\n'));
    assert.equal(broken.phantomReads, 2);
  } catch (error) {
    console.error(broker.log());
    throw error;
  } finally {
    await workload?.close();
    await broker.stop();
  }
});
