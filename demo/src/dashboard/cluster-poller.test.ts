/**
 * The poller against the real `GET /v1/cluster` route (the broker's HTTP app
 * in process, `app.request()`), one app per broker, reached through a fetch
 * that routes by port; a hung broker and a refused one show as unreachable.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ClusterView } from '../../../server/src/cluster/cluster-state.ts';
import { createHttpApp } from '../../../server/src/http/app.ts';
import { MemoryBroker } from '../../../server/src/http/testing/memory-broker.ts';
import { validateLimits } from '../../../server/src/limits.ts';
import { createMetrics } from '../../../server/src/metrics.ts';
import { requestContext } from '../../../server/src/request/request-context.ts';
import { clusterOverview, type ClusterViewJson } from './cluster-overview.ts';
import { peerView, selfView } from './cluster-fixtures.ts';
import { ClusterPoller, clusterPollerLimits } from './cluster-poller.ts';

/** What a broker of the fixture would really answer: its registrations carry replication address and lease. */
function asServerView(view: ClusterViewJson, extraBrokers: ClusterView['brokers'] = []): ClusterView {
  return {
    ...view,
    brokers: [...view.brokers.map((b) => ({ ...b, replicationHost: '127.0.0.1', replicationPort: 9000 + b.id, leaseId: String(b.id) })), ...extraBrokers],
    partitions: view.partitions.map(({ followers, ...p }) => (followers === undefined ? p : { ...p, followers })),
  };
}

async function brokerApp(view: () => ClusterView) {
  const broker = new MemoryBroker();
  await broker.createTopic(requestContext('http', ''), { name: 'orders', partitions: 3, replicationFactor: 1 });
  return createHttpApp({ broker, metrics: createMetrics(), limits: validateLimits(), isReady: () => true, clusterView: view });
}

test('polls the page\'s broker, then each registered peer; the overview takes each partition\'s lag from its leader', async () => {
  const hung = { id: 4, clientUrl: 'http://127.0.0.1:8084', replicationHost: '127.0.0.1', replicationPort: 9004, startedAtMs: 0, leaseId: '4' };
  const refused = { ...hung, id: 5, clientUrl: 'http://127.0.0.1:8085', leaseId: '5' };
  const apps = new Map([
    ['8081', await brokerApp(() => asServerView(selfView(), [hung, refused]))],
    ['8082', await brokerApp(() => asServerView(peerView()))],
  ]);
  const asked: string[] = [];
  const fetch = (async (input: string | URL | Request, init?: RequestInit) => {
    const url = new URL(String(input));
    asked.push(url.href);
    const app = apps.get(url.port);
    if (app) return app.request(`${url.pathname}${url.search}`, init);
    if (url.port === '8085') throw new TypeError('fetch failed: connection refused');
    // 8084 never answers; only the deadline ends the wait.
    return new Promise<Response>((_, reject) => init?.signal?.addEventListener('abort', () => reject(init.signal!.reason as Error)));
  }) as typeof globalThis.fetch;

  const poller = new ClusterPoller({ baseUrl: 'http://127.0.0.1:8081/', fetch, limits: { ...clusterPollerLimits, peerTimeoutMs: 200 } });
  const polled = await poller.poll();
  assert.deepEqual(asked.sort(), ['8081', '8082', '8084', '8085'].map((port) => `http://127.0.0.1:${port}/v1/cluster`));
  const o = clusterOverview(polled, 'http://127.0.0.1:8081');
  assert.deepEqual(o.nodes.map((n) => `${n.id}:${n.state}`), ['1:up', '2:up', '3:down', '4:unreachable', '5:unreachable']);
  assert.match(o.nodes[3].problem ?? '', /timeout|abort/i);
  assert.match(o.nodes[4].problem ?? '', /connection refused/);
  assert.deepEqual(o.partitions.map((p) => [p.partition, p.maxLagRecords]), [[0, 900], [1, 0], [2, null]]);
});

test('a page broker that answers an error, or not a cluster view, rejects the poll with its status', async () => {
  const app = await brokerApp(() => asServerView(selfView()));
  const viaApp = (path: string) => (async (input: string | URL | Request) => app.request(new URL(String(input)).pathname.replace('/v1/cluster', path))) as typeof globalThis.fetch;
  await assert.rejects(new ClusterPoller({ baseUrl: 'http://127.0.0.1:8081', fetch: viaApp('/v1/nope') }).poll(), /answered 404/);
  await assert.rejects(new ClusterPoller({ baseUrl: 'http://127.0.0.1:8081', fetch: viaApp('/healthz') }).poll(), /not a cluster view/);
});

test('at most maxPeers other brokers are asked, the lowest ids', async () => {
  const many = Array.from({ length: 12 }, (_, i) => ({ id: 10 + i, clientUrl: `http://127.0.0.1:${9100 + i}`, replicationHost: '', replicationPort: 0, startedAtMs: 0, leaseId: '' }));
  const app = await brokerApp(() => asServerView(selfView(), many.reverse()));
  const asked: string[] = [];
  const fetch = (async (input: string | URL | Request) => {
    const url = new URL(String(input));
    asked.push(url.port);
    return url.port === '8081' ? app.request(url.pathname) : new Response('{}', { status: 503 });
  }) as typeof globalThis.fetch;
  const polled = await new ClusterPoller({ baseUrl: 'http://127.0.0.1:8081', fetch, limits: { ...clusterPollerLimits, maxPeers: 3 } }).poll();
  assert.deepEqual(asked, ['8081', '8082', '9100', '9101']);
  assert.deepEqual([...polled.peers.keys()], [2, 10, 11]);
});
