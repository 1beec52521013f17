/**
 * The live dashboard at `/`: wires the SDK client (one WebSocket to the
 * broker that served the page) to the activity consumer, the views and the
 * traffic and replay controls. The activity numbers come through the SDK
 * (records from `subscribe`, the topic's partitions from `client.metadata()`);
 * the Cluster panel polls `GET /v1/cluster` of the brokers.
 */
import { createClient } from '@runnel/client';
import { indexedDbStorage } from '@runnel/client/indexeddb';
import { activityTopic, ACTIVITY_TOPIC_NAME } from '../activity.ts';
import { brokerEndpoint } from '../broker-endpoint.ts';
import { ActivityConsumer } from './activity-consumer.ts';
import { ActivityView } from './activity-view.ts';
import { clusterOverview } from './cluster-overview.ts';
import { ClusterPanel } from './cluster-panel.ts';
import { ClusterPoller } from './cluster-poller.ts';
import { byId } from './dom.ts';
import { PartitionsView } from './partitions-view.ts';
import { RateChart } from './rate-chart.ts';
import { ReplayControl } from './replay-control.ts';
import { TrafficControl } from './traffic-control.ts';

/** How often cluster metadata (high watermarks, leaders, ISR) is refreshed. */
const METADATA_INTERVAL_MS = 2_000;
/** Pause between the end of one /v1/cluster poll and the next (polls never overlap). */
const CLUSTER_POLL_INTERVAL_MS = 2_000;
/** Time-based figures (rate, active users, the moving chart) refresh at least this often. */
const TICK_MS = 1_000;

async function main(): Promise<void> {
  const endpoint = brokerEndpoint(location.origin);
  const storage = await indexedDbStorage({ name: 'runnel-demo-dashboard-client' });
  const client = createClient({
    urls: [endpoint.webSocketUrl],
    clientId: 'runnel-demo-dashboard',
    // The traffic button's events wait in IndexedDB until acknowledged, like the shop's.
    // The aggregates' snapshots live in the same database (storage.states, see ActivityConsumer).
    storage,
  });
  const connection = document.getElementById('connection')!;
  const connectionLabel = document.getElementById('connection-label')!;
  const showState = (state: string): void => {
    connection.dataset.state = state;
    connectionLabel.textContent = state;
  };
  showState(client.state);
  client.on('statechange', ({ state }) => showState(state));

  const chart = new RateChart(document.getElementById('rate-chart')!);
  const activityView = new ActivityView(chart);
  const partitionsView = new PartitionsView();
  let renderScheduled = false;
  const render = (): void => {
    if (renderScheduled) return;
    renderScheduled = true;
    requestAnimationFrame(() => {
      renderScheduled = false;
      activityView.render(consumer.aggregates, Date.now());
    });
  };
  const consumer = new ActivityConsumer(client, storage.states!, {
    onChange: render,
    onNotRecovered: (event) => {
      const lost = event.lost.to === null ? 'the rest of a deleted topic' : `offsets ${event.lost.from}–${event.lost.to - 1}`;
      document.getElementById('replay-status')!.textContent = `Partition ${event.partition}: ${lost} no longer readable (${event.reason}); continuing from ${event.resetTo}.`;
    },
  });

  new TrafficControl((event) => client.producer.send(activityTopic, event, { key: event.userId }));
  new ReplayControl((fromTimestampMs) => consumer.replay(fromTimestampMs));
  (window as unknown as { runnelDashboard: unknown }).runnelDashboard = { client, consumer, chart };

  const refreshMetadata = async (): Promise<void> => {
    try {
      const metadata = await client.metadata();
      partitionsView.render(metadata, ACTIVITY_TOPIC_NAME, consumer.aggregates);
      const topic = metadata.topics.find((t) => t.name === ACTIVITY_TOPIC_NAME && t.errorCode === 0);
      if (topic) consumer.maybeSubscribeNewPartitions(topic.partitions.length);
    } catch (error) {
      console.warn('dashboard: metadata failed', error);
    }
  };
  const clusterPanel = new ClusterPanel(byId('cluster-panel'));
  const clusterPoller = new ClusterPoller({ baseUrl: location.origin });
  const pollCluster = async (): Promise<void> => {
    try {
      clusterPanel.render(clusterOverview(await clusterPoller.poll(), location.origin));
    } catch (error) {
      clusterPanel.renderError(error);
    }
    setTimeout(() => void pollCluster(), CLUSTER_POLL_INTERVAL_MS);
  };
  void pollCluster();

  await consumer.start();
  await refreshMetadata();
  setInterval(() => void refreshMetadata(), METADATA_INTERVAL_MS);
  setInterval(render, TICK_MS);
}

main().catch((error: unknown) => {
  console.error('dashboard failed to start', error);
  const label = document.getElementById('connection-label');
  if (label) label.textContent = `error: ${(error as Error).message}`;
});
