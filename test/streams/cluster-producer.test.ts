/**
 * Issue 14 on issue 12's cluster: Durable Streams idempotent appends on a
 * broker that does not lead the stream's partition answer exactly as on the
 * leader. Real etcd and three broker processes (LocalCluster), streams of
 * replication factor 3. Streams are created through broker 0 until one is led
 * by broker 0 and one by another broker; the same script of producer appends
 * (accepted, duplicate retries, a gap, a new epoch, a fenced zombie, a bad
 * epoch start) goes through broker 0 to both, and every status and producer
 * header must match. Then the forwarded stream's leader is SIGKILLed: the
 * retry of the last acknowledged append through broker 0 is still a 204
 * duplicate (the new leader rebuilt the table from the replicated batches),
 * the next sequence is accepted, and once the killed broker is back every
 * broker's replica holds every message exactly once.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { LocalCluster, type BrokerNode } from '../../server/src/cluster/local-cluster.ts';
import { BrokerHttp } from '../e2e/harness/broker-http.ts';
import { clusterLog, runningBrokers, waitFullIsr } from '../e2e/harness/cluster-probes.ts';
import { waitFor } from '../e2e/harness/wait-for.ts';

/** Streams created through broker 0 before giving up on finding both leader placements (leaders are placed at random). */
const MAX_CREATES = 24;

const producer = (epoch: number, seq: number) => ({ 'producer-id': 'checkout-7', 'producer-epoch': String(epoch), 'producer-seq': String(seq) });

/** One request of the script and the answer every broker must give it. */
interface Step { headers: Record<string, string>; body: string; status: number; answer: Record<string, string> }

const script: Step[] = [
  { headers: producer(0, 0), body: '[{"n":1},{"n":2}]', status: 200, answer: { 'producer-epoch': '0', 'producer-seq': '0' } },
  { headers: producer(0, 1), body: '{"n":3}', status: 200, answer: { 'producer-epoch': '0', 'producer-seq': '1' } },
  { headers: producer(0, 1), body: '{"n":3}', status: 204, answer: { 'producer-epoch': '0', 'producer-seq': '1' } },
  { headers: producer(0, 0), body: '[{"n":1},{"n":2}]', status: 204, answer: { 'producer-epoch': '0', 'producer-seq': '1' } },
  { headers: producer(0, 3), body: '{"n":-1}', status: 409, answer: { 'producer-expected-seq': '2', 'producer-received-seq': '3' } },
  { headers: producer(1, 0), body: '{"n":4}', status: 200, answer: { 'producer-epoch': '1', 'producer-seq': '0' } },
  { headers: producer(0, 2), body: '{"n":-2}', status: 403, answer: { 'producer-epoch': '1' } },
  { headers: producer(2, 1), body: '{"n":-3}', status: 400, answer: {} },
];
const ANSWER_HEADERS = ['producer-epoch', 'producer-seq', 'producer-expected-seq', 'producer-received-seq'];

let cluster: LocalCluster | undefined;
before(async () => {
  cluster = await LocalCluster.start({
    nodes: 3, minInsyncReplicas: 2,
    // NB: a short lease and lag: the killed leader is replaced soon and, restarted, rejoins the ISR soon.
    brokerLimits: { replicaLagTimeMs: 2_000, brokerLeaseTtlMs: 2_000 },
    limits: { clusterFormedTimeoutMs: 30_000 },
  });
});
after(async () => {
  await cluster?.stop();
});

/** The leader of `topic`'s partition 0 as `via` sees it, once it has one. */
async function leaderOf(via: BrokerNode, topic: string, not?: number): Promise<number> {
  return waitFor(`${topic} led${not === undefined ? '' : ` by a broker other than ${not}`} as broker ${via.id} sees it`, async () => {
    const { status, json } = await new BrokerHttp(via.url).request('GET', `/v1/topics/${encodeURIComponent(topic)}`);
    const leader = status === 200 ? (json.partitions[0].leader as number) : -1;
    return leader >= 0 && leader !== not ? leader : false;
  }, { timeoutMs: 30_000, intervalMs: 20, context: () => clusterLog(cluster!) });
}

/** Status, producer headers and Stream-Next-Offset position of one append (the generation part differs per stream). */
async function append(url: string, step: Step): Promise<{ status: number; headers: Record<string, string>; position: string | undefined }> {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...step.headers }, body: step.body });
  await res.arrayBuffer();
  const headers: Record<string, string> = {};
  for (const name of ANSWER_HEADERS) {
    const v = res.headers.get(name);
    if (v !== null) headers[name] = v;
  }
  return { status: res.status, headers, position: res.headers.get('stream-next-offset')?.split('_')[0] };
}

test('idempotent Durable Streams appends through a broker that does not lead the stream answer as on the leader, across a leader SIGKILL', { timeout: 240_000 }, async () => {
  const c = cluster!;
  const entry = c.brokers[0];
  let local: { url: string; topic: string } | undefined;
  let forwarded: { url: string; topic: string; leader: number } | undefined;
  for (let i = 0; i < MAX_CREATES && (local === undefined || forwarded === undefined); i++) {
    const url = `${entry.url}/v1/stream/cluster/orders-${i}`;
    const res = await fetch(url, { method: 'PUT', headers: { 'content-type': 'application/json' } });
    assert.equal(res.status, 201, `create ${url}`);
    const topic = res.headers.get('runnel-topic')!;
    const leader = await leaderOf(entry, topic);
    if (leader === entry.id) local ??= { url, topic };
    else forwarded ??= { url, topic, leader };
  }
  assert.ok(local && forwarded, `${MAX_CREATES} streams created through broker ${entry.id} without one led by it and one led elsewhere`);
  await waitFullIsr(c, forwarded.topic, 3);

  for (const [i, step] of script.entries()) {
    const onLeader = await append(local.url, step);
    const viaFollower = await append(forwarded.url, step);
    assert.equal(viaFollower.status, step.status, `step ${i} through broker ${entry.id} to the stream led by ${forwarded.leader}`);
    assert.deepEqual(viaFollower.headers, step.answer, `step ${i}: producer headers`);
    assert.deepEqual(viaFollower, onLeader, `step ${i}: the same answer as on the leader`);
  }

  // The leader goes; broker 0 still does not lead (or now does): either way the table is the new leader's.
  const victim = c.brokers.find((b) => b.id === forwarded.leader)!;
  await victim.kill('SIGKILL');
  await leaderOf(entry, forwarded.topic, victim.id);
  const retry = await append(forwarded.url, { ...script[5], status: 204, answer: {} });
  assert.equal(retry.status, 204, 'the retry of the last acknowledged append after failover is a duplicate');
  assert.deepEqual(retry.headers, { 'producer-epoch': '1', 'producer-seq': '0' });
  const next = await append(forwarded.url, { headers: producer(1, 1), body: '{"n":5}', status: 200, answer: {} });
  assert.equal(next.status, 200);
  assert.equal(next.headers['producer-seq'], '1');
  const zombie = await append(forwarded.url, script[6]);
  assert.equal(zombie.status, 403, 'the old epoch is still fenced on the new leader');
  assert.equal(zombie.headers['producer-epoch'], '1');

  await victim.start();
  await waitFullIsr(c, forwarded.topic, 3);
  const expected = [1, 2, 3, 4, 5];
  await waitFor('every broker holds every message once', async () => {
    for (const broker of runningBrokers(c)) {
      const values = (await new BrokerHttp(broker.url).readLog(forwarded.topic, 0)).map((r) => (r.value as { n: number }).n);
      if (JSON.stringify(values) !== JSON.stringify(expected)) return false;
    }
    return true;
  }, { timeoutMs: 30_000, context: () => clusterLog(c) });
  const read = await fetch(`${forwarded.url}?offset=-1`);
  assert.deepEqual(((await read.json()) as { n: number }[]).map((m) => m.n), expected, 'the Durable Streams read through broker 0');
  assert.equal(read.headers.get('stream-up-to-date'), 'true');
});
