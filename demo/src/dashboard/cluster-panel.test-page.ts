/**
 * The page of cluster-panel.test.ts: the Cluster panel alone in a document,
 * drawn from whatever polled answers the test hands `window.clusterPanelPage`.
 */
import { clusterOverview, type ClusterViewJson } from './cluster-overview.ts';
import { ClusterPanel } from './cluster-panel.ts';

const root = document.createElement('section');
root.className = 'card full cluster';
root.id = 'cluster-panel';
document.body.className = 'grid';
document.body.append(root);
const panel = new ClusterPanel(root);

(window as unknown as { clusterPanelPage: unknown }).clusterPanelPage = {
  render(self: ClusterViewJson, peers: [number, ClusterViewJson | { error: string }][], pageOrigin: string, maxRows?: number): void {
    panel.render(clusterOverview({ self, peers: new Map(peers) }, pageOrigin, maxRows === undefined ? undefined : { maxRows }));
  },
  renderError(message: string): void {
    panel.renderError(new Error(message));
  },
};
