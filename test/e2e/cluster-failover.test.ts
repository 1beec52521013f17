/**
 * Issue 12, must show 3, in real Chromium on a real cluster: etcd and three
 * broker processes (LocalCluster), a topic with replication factor 3 and
 * minInsyncReplicas 2, and one page given all three WebSocket URLs that
 * produces a numbered stream through the SDK's IndexedDB outbox and consumes
 * it transactionally (sdk-page.ts: the handler's journal rows commit in the
 * same IndexedDB transaction as the stored offset).
 *
 * Four SIGKILLs, each victim restarted before the next (and back in every
 * ISR): the controller while the page is on another broker; the broker the
 * page is connected to; the one it moved to; a broker that is neither the
 * page's nor the controller (a follower of some partitions, leader of
 * others). Afterwards:
 * every id whose send the outbox accepted is in the log exactly once (read
 * per partition over HTTP from each surviving broker, which agree), the
 * journal holds every offset exactly once and in order, no send failed, and
 * a kill of another broker did not move the page. Prints, per kill, the time
 * from the kill to: its leaderships moved, it left every ISR, the first
 * acknowledgment, the first acknowledgment of a record queued after the
 * kill, records flowing on every partition; and each partition's longest
 * delivery gap. (Figures only: tests do not assert wall-clock speed.)
 *
 * Which broker the page uses is observed twice: in the page (its WebSockets,
 * seen through a pass-through wrapper installed before the SDK loads; the
 * SDK does not expose its current URL) and at the brokers
 * (`runnel_connections` in each one's /metrics).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Browser, BrowserContext } from 'playwright-core';
import { LocalCluster, type BrokerNode } from '../../server/src/cluster/local-cluster.ts';
import { BrokerHttp } from './harness/broker-http.ts';
import { launchChromium } from './harness/chromium.ts';
import { clusterLog, connectionCounts, createServedTopic, partitionViews, roles, runningBrokers, waitFullIsr } from './harness/cluster-probes.ts';
import { DeliveryLedger, exactlyOnceProblems } from './harness/delivery-ledger.ts';
import type { PageServer } from './harness/page-server.ts';
import { waitFor } from './harness/wait-for.ts';
import { ledgerOf, serveSdkPage } from './pages/sdk-page-driver.ts';

const TOPIC = 'cluster-browser-stream';
const PARTITIONS = 3;
const REPLICAS = 3;
const RECORDS_PER_SECOND = 200;
/** Records each partition must gain (as the page's handler reports them) before a kill and after it. */
const FLOW_RECORDS = 25;

let cluster: LocalCluster | undefined, pages: PageServer | undefined, browser: Browser | undefined;
before(async () => {
  const started = await Promise.allSettled([
    LocalCluster.start({
      nodes: 3, minInsyncReplicas: 2,
      // NB: short lag and lease: a restarted broker rejoins the ISR soon, a dead one is dropped soon (its closed socket is the fast path).
      brokerLimits: { replicaLagTimeMs: 2_000, brokerLeaseTtlMs: 2_000 },
      limits: { clusterFormedTimeoutMs: 30_000 },
    }),
    serveSdkPage(),
    launchChromium(),
  ]);
  if (started[0].status === 'fulfilled') cluster = started[0].value;
  if (started[1].status === 'fulfilled') pages = started[1].value;
  if (started[2].status === 'fulfilled') browser = started[2].value;
  const failed = started.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (failed) throw failed.reason;
});
after(async () => {
  await browser?.close().catch(() => {});
  await pages?.close();
  await cluster?.stop();
});

/** One WebSocket the page created, as the wrapper saw it (wall-clock ms; 0 = not yet). */
interface SocketRecord { url: string; createdAt: number; openedAt: number; closedAt: number; ackedAtClose: number }

/**
 * Installed before any page script: a pass-through WebSocket subclass that
 * records each socket's URL and open/close times (and the page's ack count
 * when it closed), and a sampler of `produceStats().acked` (its changes,
 * with their time) for the kill-to-first-ack figures. Plain JS text: a
 * function would be serialised after tsx's transform, helpers and all.
 */
const OBSERVE_SCRIPT = `(() => {
  const Native = window.WebSocket;
  const sockets = [];
  const acks = [];
  const acked = () => (window.runnelPage ? window.runnelPage.produceStats().acked : 0);
  window.runnelSockets = sockets;
  window.runnelAcks = acks;
  window.WebSocket = class extends Native {
    constructor(url, protocols) {
      super(url, protocols);
      const record = { url: String(url), createdAt: Date.now(), openedAt: 0, closedAt: 0, ackedAtClose: -1 };
      sockets.push(record);
      this.addEventListener('open', () => { record.openedAt = Date.now(); });
      this.addEventListener('close', () => { record.closedAt = Date.now(); record.ackedAtClose = acked(); });
    }
  };
  let last = -1;
  setInterval(() => {
    const n = acked();
    if (n !== last) { last = n; acks.push([Date.now(), n]); }
  }, 2);
})();`;

/** sdk-page.ts on several URLs, observed (the shared driver opens one URL, unobserved). */
async function openClusterPage(context: BrowserContext, urls: string[], db: string) {
  const page = await context.newPage();
  const progress = new DeliveryLedger();
  /** Per partition, when each report of handler deliveries reached this process (progress only). */
  const arrivals: number[][] = Array.from({ length: PARTITIONS }, () => []);
  const log: string[] = [];
  page.on('pageerror', (error) => log.push(`[pageerror] ${error.message}`));
  page.on('console', (message) => { if (message.type() === 'warning' || message.type() === 'error') log.push(`[${message.type()}] ${message.text()}`); });
  await page.exposeFunction('runnelDelivered', (rows: [number, number, string][]) => {
    progress.record(rows.map(([partition, offset]) => ({ partition, offset })));
    const at = Date.now();
    for (const p of new Set(rows.map(([partition]) => partition))) arrivals[p]?.push(at);
  });
  await page.addInitScript({ content: OBSERVE_SCRIPT });
  await page.goto(`${pages!.url}/sdk.html`);
  await page.waitForFunction(() => window.runnelPage !== undefined);
  // NB: ping every second: a silent link is noticed within 2 s (a SIGKILL closes the socket at once anyway).
  await page.evaluate((o) => window.runnelPage.open(o), { urls, db, pingIntervalMs: 1_000 });
  return {
    page, progress, arrivals, log,
    consume: (topic: string, consumerId: string) => page.evaluate((o) => window.runnelPage.consume(o), { topic, consumerId }),
    journal: () => page.evaluate(() => window.runnelPage.journal()),
    startProducing: (topic: string, ratePerSecond: number, idPrefix: string) => page.evaluate((o) => window.runnelPage.startProducing(o), { topic, ratePerSecond, idPrefix }),
    stopProducing: () => page.evaluate(() => window.runnelPage.stopProducing()),
    produceStats: () => page.evaluate(() => window.runnelPage.produceStats()),
    sockets: () => page.evaluate(() => (window as unknown as { runnelSockets: SocketRecord[] }).runnelSockets),
    acks: () => page.evaluate(() => (window as unknown as { runnelAcks: [number, number][] }).runnelAcks),
  };
}
type ClusterPage = Awaited<ReturnType<typeof openClusterPage>>;

/** The broker the page is connected to: its one open WebSocket, confirmed by that broker's (and only its) runnel_connections. */
async function connectedBroker(c: LocalCluster, sdk: ClusterPage): Promise<{ broker: BrokerNode; socket: SocketRecord }> {
  const open = (await sdk.sockets()).filter((s) => s.openedAt > 0 && s.closedAt === 0);
  assert.equal(open.length, 1, `the page has one open WebSocket: ${JSON.stringify(open)}`);
  const broker = c.brokers.find((b) => b.wsUrl === open[0].url);
  assert.ok(broker, `the page's WebSocket ${open[0].url} is a broker of the cluster`);
  await waitFor(`runnel_connections = 1 at node ${broker.id} only`, async () => {
    const counts = await connectionCounts(c);
    return [...counts].every(([id, n]) => n === (id === broker.id ? 1 : 0));
  }, { timeoutMs: 15_000 });
  return { broker, socket: open[0] };
}

/** Resolves once every partition's handler deliveries passed `from[p] + FLOW_RECORDS`; returns when. */
async function waitFlowing(sdk: ClusterPage, what: string, context: () => string): Promise<number> {
  const from = Array.from({ length: PARTITIONS }, (_, p) => sdk.progress.nextOffset(p));
  await waitFor(what, () => from.every((o, p) => sdk.progress.nextOffset(p) >= o + FLOW_RECORDS), { timeoutMs: 45_000, intervalMs: 10, context });
  return Date.now();
}

/** Per partition, the longest time without a delivery reaching this process between `fromMs` and `toMs`. */
function deliveryGaps(sdk: ClusterPage, fromMs: number, toMs: number): number[] {
  return sdk.arrivals.map((times) => {
    let last = fromMs, gap = 0;
    for (const at of times) {
      if (at <= fromMs) continue;
      if (at > toMs) break;
      gap = Math.max(gap, at - last);
      last = at;
    }
    return gap;
  });
}

/**
 * When `via` first saw no partition of `topic` led by `victim`, and when
 * first `victim` in no partition's ISR (until then acks=all on a partition it
 * follows waits for it: replicaLagTimeMs).
 */
function watchVictim(via: BrokerNode, victim: BrokerNode, why: () => string): Promise<{ leadersMovedAt: number; isrShrunkAt: number }> {
  let leadersMovedAt = 0;
  const watched = waitFor(`node ${victim.id} to lead nothing and leave every ISR`, async () => {
    const views = await partitionViews(via, TOPIC);
    if (views.length === 0) return false;
    if (leadersMovedAt === 0 && views.every((p) => p.leader !== victim.id)) leadersMovedAt = Date.now();
    return leadersMovedAt > 0 && views.every((p) => !p.isr.includes(victim.id)) && { leadersMovedAt, isrShrunkAt: Date.now() };
  }, { timeoutMs: 45_000, intervalMs: 10, context: why });
  watched.catch(() => {}); // NB: awaited later; a timeout must not surface first as an unhandled rejection
  return watched;
}

/**
 * When a record queued after the kill was first acknowledged, at the latest:
 * the first time the page's ack count passed its queued count taken right
 * after the victim exited (acked ≤ queued, so some later record was acked).
 * The first ack at all can be an in-flight batch re-sent and answered as a
 * duplicate, which says nothing about availability.
 */
async function firstFreshAck(sdk: ClusterPage, queuedAtKill: number, why: () => string): Promise<number> {
  const sample = await waitFor('an acknowledgment of a record queued after the kill', async () => (await sdk.acks()).find(([, n]) => n > queuedAtKill), { timeoutMs: 45_000, intervalMs: 20, context: why });
  return sample[0];
}

async function figures(gone: ReturnType<typeof watchVictim>, killedAt: number): Promise<string> {
  const { leadersMovedAt, isrShrunkAt } = await gone;
  return `leaders moved ${leadersMovedAt - killedAt} ms, out of every ISR ${isrShrunkAt - killedAt} ms`;
}

function describeRoles(id: number, r: Awaited<ReturnType<typeof roles>>): string {
  const parts = [`node ${id}`];
  if (r.controller === id) parts.push('controller');
  const led = r.leaderOf.get(id);
  parts.push(led ? `leader of partition ${led.join(', ')}` : 'leads nothing');
  return parts.join(', ');
}

/** Which broker a kill takes: the page's, or another one (the controller, or one that is not the controller). */
type Victim = 'page' | 'controller' | 'follower';

test('a page producing through its IndexedDB outbox and consuming on a 3-broker cluster: SIGKILL of the controller, of its broker twice, of a follower; no gap, no duplicate at the handler, no lost outbox record', { timeout: 150_000 }, async () => {
  const c = cluster!;
  await createServedTopic(c, c.brokers[0], { name: TOPIC, partitions: PARTITIONS, replicationFactor: REPLICAS, minInsyncReplicas: 2 });
  // NB: the controller last in the page's URLs: the page starts elsewhere, so the first kill takes a controller the page is not on.
  const { controller } = await roles(c.brokers[0], TOPIC);
  const urls = [...c.brokers].sort((a, b) => Number(a.id === controller) - Number(b.id === controller)).map((b) => b.wsUrl);
  const context = await browser!.newContext();
  const sdk = await openClusterPage(context, urls, 'cluster-page');
  const why = (): string => `${clusterLog(c)}\n--- page ---\n${sdk.log.slice(-20).join('\n')}`;
  const print = (line: string): void => console.log(`# cluster browser failover: ${line}`);
  try {
    await sdk.consume(TOPIC, 'cluster-page');
    await sdk.startProducing(TOPIC, RECORDS_PER_SECOND, 'c-');
    const plan: Victim[] = ['controller', 'page', 'page', 'follower'];
    for (const [i, kind] of plan.entries()) {
      // Two of three must stay up for minInsyncReplicas 2: every victim but the last comes back, and is in every ISR before the next kill.
      await waitFullIsr(c, TOPIC, REPLICAS);
      await waitFlowing(sdk, `records on every partition before kill ${i + 1}`, why);
      const { broker: pageBroker, socket } = await connectedBroker(c, sdk);
      const now = await roles(pageBroker, TOPIC);
      const others = runningBrokers(c).filter((b) => b !== pageBroker);
      const victim = kind === 'page' ? pageBroker
        : others.find((b) => (b.id === now.controller) === (kind === 'controller')) ?? others[0];
      const watcher = kind === 'page' ? others[0] : pageBroker;
      const victimRoles = describeRoles(victim.id, now);
      const socketsBefore = (await sdk.sockets()).length;
      const ackedBefore = (await sdk.produceStats()).acked;
      const killedAt = Date.now();
      await victim.kill('SIGKILL');
      const gone = watchVictim(watcher, victim, why);
      const queuedAtKill = (await sdk.produceStats()).queued.length;
      // The first ack over a working link: after the page saw its socket close (a kill of its broker), else after the kill.
      const ackedFrom = kind === 'page'
        ? (await waitFor(`the page to see node ${victim.id}'s socket close`, async () => (await sdk.sockets()).find((s) => s.createdAt === socket.createdAt && s.url === socket.url && s.closedAt > 0), { context: why })).ackedAtClose
        : ackedBefore;
      const firstAck = await waitFor(`an acknowledgment after killing node ${victim.id}`, async () => (await sdk.acks()).find(([at, n]) => at >= killedAt && n > ackedFrom), { timeoutMs: 45_000, intervalMs: 20, context: why });
      const flowingAt = await waitFlowing(sdk, `records on every partition after killing node ${victim.id}`, why);
      const { broker: after } = await connectedBroker(c, sdk);
      if (kind === 'page') assert.notEqual(after, victim, 'the page moved to another broker');
      else {
        assert.equal(after, pageBroker, `killing node ${victim.id} left the page on node ${pageBroker.id}`);
        assert.equal((await sdk.sockets()).length, socketsBefore, `killing node ${victim.id} did not make the page reconnect`);
      }
      print(`kill ${i + 1}: ${victimRoles}${kind === 'page' ? ` (the page's broker) → page on node ${after.id}` : ` (not the page's) → page stays on node ${after.id}`}; kill to: ${await figures(gone, killedAt)}, first ack ${firstAck[0] - killedAt} ms, first ack of a record queued after it ≤ ${await firstFreshAck(sdk, queuedAtKill, why) - killedAt} ms, every partition flowing ${flowingAt - killedAt} ms; longest delivery gap per partition ${deliveryGaps(sdk, killedAt - 1_000, flowingAt).join(' / ')} ms`);
      if (i < plan.length - 1) await victim.start();
    }

    const stats = await sdk.stopProducing();
    assert.deepEqual(stats.errors.slice(0, 20), [], `${stats.errors.length} sends failed`);
    await waitFor('every queued record acknowledged and the outbox empty', async () => {
      const s = await sdk.produceStats();
      return s.outboxRecords === 0 && s.acked === stats.queued.length;
    }, { context: why });

    // The log, per partition, from every surviving broker: they agree, and each queued id is in it once.
    const survivors = runningBrokers(c);
    const logs = await waitFor('every surviving broker to serve every queued record', async () => {
      const all = await Promise.all(survivors.map(async (b) => {
        const http = new BrokerHttp(b.url);
        const partitions = await http.partitions(TOPIC);
        if (partitions.reduce((n, p) => n + p.highWatermark, 0) < stats.queued.length) return undefined;
        return { id: b.id, highWatermarks: partitions.map((p) => p.highWatermark), ids: await Promise.all(partitions.map(async (p) => (await http.readLog(TOPIC, p.partition)).map((r) => (r.value as { id: string }).id))) };
      }));
      return all.every((l) => l !== undefined) && all.map((l) => l!);
    }, { context: why });
    for (const other of logs.slice(1)) {
      assert.deepEqual(other.highWatermarks, logs[0].highWatermarks, `node ${other.id} and node ${logs[0].id} agree on the high watermarks`);
      for (let p = 0; p < PARTITIONS; p++) assert.deepEqual(other.ids[p], logs[0].ids[p], `node ${other.id} and node ${logs[0].id} agree on partition ${p}`);
    }
    const logProblems = exactlyOnceProblems(stats.queued, logs[0].ids.flat());
    assert.deepEqual(logProblems.slice(0, 20), [], `${logProblems.length} queued ids not exactly once in the log`);

    const highWatermarks = logs[0].highWatermarks;
    const journal = await waitFor('the journal to reach every high watermark', async () => {
      const rows = await sdk.journal();
      return ledgerOf(rows).reached(highWatermarks) && rows;
    }, { context: why });
    const problems = ledgerOf(journal).problems(highWatermarks);
    assert.deepEqual(problems, [], `handler deliveries vs the log (high watermarks ${highWatermarks}):\n${problems.join('\n')}`);
    print(`${stats.queued.length} queued, ${logs[0].ids.flat().length} in the log (nodes ${logs.map((l) => l.id).join(', ')} agree), ${journal.length} handled, ${(await sdk.sockets()).length} WebSockets opened`);
  } finally {
    await context.close();
  }
});
