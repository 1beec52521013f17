/**
 * One schedule end to end on a running `ClusterHarness`: a fresh topic
 * (replication factor 3), the workload, each fault injected, held, healed and
 * waited out (every partition back to a leader and a full ISR), a cool-down,
 * then quiesce (producers stopped, replicas and consumers caught up) and read
 * the final state: the log as clients read it from each leader (HTTP) and
 * every replica's stored batches. The checker judges the history.
 */
import { checkHistory, type CheckResult } from './history-checker.ts';
import { HistoryRecorder, type History, type PartitionFinal } from './history.ts';
import type { ClusterHarness } from './harness.ts';
import { describeSchedule, type FaultSchedule } from './fault-schedule.ts';
import { injectFault } from './nemesis.ts';
import { Workload } from './workload.ts';

export interface RunLimits {
  /** How long producers get to settle their sends after the last fault. */
  settleTimeoutMs: number;
  /** How long consumers get to reach the final high watermark. */
  consumerCatchUpTimeoutMs: number;
  /** How long creating the topic may be retried. */
  createTopicTimeoutMs: number;
}

export const defaultRunLimits: RunLimits = { settleTimeoutMs: 30_000, consumerCatchUpTimeoutMs: 30_000, createTopicTimeoutMs: 30_000 };

export interface ScheduleRun {
  schedule: FaultSchedule;
  history: History;
  result: CheckResult;
  /** Sends unsettled when producers stopped, consumers behind at the end, client errors seen: context for a failure, not verdicts. */
  notes: { pendingAtStop: number; consumersBehind: string[]; clientErrors: readonly string[] };
  durationMs: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** How often the leadership timeline polls the cluster view (diagnosis of slow failovers). */
const LEADERSHIP_POLL_MS = 200;

/**
 * Polls the cluster view until `stopped()`, recording each change of a
 * partition's leader, epoch, ISR or the controller (from any broker that is up
 * and connected to etcd: its cached view of etcd).
 */
async function observeLeadership(h: ClusterHarness, topic: string, recorder: HistoryRecorder, stopped: () => boolean): Promise<void> {
  const last = new Map<number, string>();
  while (!stopped()) {
    try {
      const view = await h.view([], topic);
      const atMs = Date.now();
      for (const p of view.partitions.filter((x) => x.topic === topic)) {
        const key = `${p.leader} ${p.leaderEpoch} ${p.isr.join(',')} ${view.controller}`;
        if (last.get(p.partition) === key) continue;
        last.set(p.partition, key);
        recorder.leadership.push({ topic, partition: p.partition, atMs, leader: p.leader, leaderEpoch: p.leaderEpoch, isr: p.isr, controller: view.controller });
      }
    } catch {
      // no broker answered (e.g. all killed): nothing to record
    }
    await sleep(LEADERSHIP_POLL_MS);
  }
}

async function createTopic(h: ClusterHarness, name: string, partitions: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (let i = 0; ; i++) {
    const url = h.httpUrls[i % h.httpUrls.length];
    try {
      const response = await fetch(`${url}/v1/topics`, {
        method: 'POST', headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ name, partitions, replicationFactor: Math.min(3, h.nodes.length) }),
        signal: AbortSignal.timeout(5_000),
      });
      const text = await response.text();
      if (response.status === 201 || response.status === 200 || (response.status === 409 && i > 0)) return;
      throw new Error(`HTTP ${response.status} ${text}`);
    } catch (error) {
      if (Date.now() > deadline) throw new Error(`creating topic ${name}: ${error instanceof Error ? error.message : String(error)}`);
      await sleep(200);
    }
  }
}

/** Best effort: the next schedules should not carry this one's idle partitions (their follower fetches cost CPU). */
async function deleteTopic(h: ClusterHarness, name: string): Promise<void> {
  await fetch(`${h.httpUrls[0]}/v1/topics/${encodeURIComponent(name)}`, { method: 'DELETE', signal: AbortSignal.timeout(5_000) }).then((r) => r.arrayBuffer(), () => undefined);
}

/** Every record of `topic/partition` below `highWatermark`, read from `url` (the leader). */
async function readServedLog(url: string, topic: string, partition: number, highWatermark: number): Promise<{ offset: number; value: string }[]> {
  const out: { offset: number; value: string }[] = [];
  let offset = 0;
  while (offset < highWatermark) {
    const response = await fetch(`${url}/v1/topics/${encodeURIComponent(topic)}/partitions/${partition}/records?offset=${offset}&maxRecords=2000&maxWaitMs=0`, { signal: AbortSignal.timeout(10_000) });
    const json = (await response.json()) as { records: { offset: number; value: unknown }[]; nextOffset: number };
    if (response.status !== 200) throw new Error(`final read ${topic}/${partition}@${offset} from ${url}: HTTP ${response.status} ${JSON.stringify(json)}`);
    for (const r of json.records) if (r.offset < highWatermark) out.push({ offset: r.offset, value: typeof r.value === 'string' ? r.value : JSON.stringify(r.value) });
    if (json.records.length === 0 || json.nextOffset <= offset) break;
    offset = json.nextOffset;
  }
  return out;
}

export async function runSchedule(h: ClusterHarness, schedule: FaultSchedule, log: (line: string) => void = () => {}, limits: RunLimits = defaultRunLimits): Promise<ScheduleRun> {
  const startedAt = Date.now();
  log(describeSchedule(schedule));
  const topic = `faults-${schedule.seed}-${startedAt.toString(36)}`;
  await createTopic(h, topic, schedule.partitions, limits.createTopicTimeoutMs);
  await h.waitHealthy(topic);
  const topicId = await h.topicId(topic);
  const recorder = new HistoryRecorder(schedule.seed);
  const workload = Workload.start({
    topic, partitions: schedule.partitions, ratePerSec: schedule.ratePerSec, wsUrls: h.wsUrls, httpUrls: h.httpUrls,
    recorder, group: `faults-${schedule.seed}`, seed: schedule.seed,
  });
  let observing = true;
  const observer = observeLeadership(h, topic, recorder, () => !observing);
  try {
    await sleep(schedule.warmupMs);
    for (const step of schedule.steps) {
      await sleep(step.gapMs);
      const fault = await injectFault(h, step, topic, topicId, recorder);
      log(`  ${step.kind}: ${fault.record.target}; led ${fault.record.ledPartitions.map((p) => p.partition).join(',') || 'none'}`);
      await sleep(step.holdMs);
      await fault.heal();
      await h.waitHealthy(topic);
      // Producers caught up too: the next fault's failover must not measure the backlog of this one (writes are FIFO per
      // partition, so a record sent after the next fault would wait behind it). Steady state holds ~a quarter second of sends.
      const drained = Date.now() + limits.settleTimeoutMs;
      const backlog = Math.max(50, schedule.ratePerSec / 2);
      while (workload.pendingSends > backlog && Date.now() < drained) await sleep(50);
      if (workload.pendingSends > backlog) log(`  producers still ${workload.pendingSends} sends behind ${limits.settleTimeoutMs} ms after the heal: the next fault's failover includes that backlog`);
    }
    await sleep(schedule.cooldownMs);
    const pendingAtStop = await workload.stopProducing(limits.settleTimeoutMs);
    observing = false;
    await observer;
    const final = await h.waitHealthy(topic, { caughtUp: true });
    const consumersBehind = await workload.waitConsumers(final.map((p) => p.highWatermark), limits.consumerCatchUpTimeoutMs);
    const partitions: PartitionFinal[] = [];
    for (const p of final) {
      partitions.push({
        topic, partition: p.partition, leader: p.leader, logStartOffset: 0, highWatermark: p.highWatermark,
        log: await readServedLog(h.node(p.leader).url, topic, p.partition, p.highWatermark),
        replicas: await Promise.all(p.replicas.map(async (brokerId) => ({ brokerId, batches: await h.readReplica(brokerId, topicId, p.partition) }))),
      });
    }
    await workload.close();
    const history = recorder.finish(partitions, Date.now());
    const result = checkHistory(history);
    await deleteTopic(h, topic);
    return { schedule, history, result, notes: { pendingAtStop, consumersBehind, clientErrors: workload.errors }, durationMs: Date.now() - startedAt };
  } finally {
    observing = false;
    await observer;
    await workload.close();
  }
}
