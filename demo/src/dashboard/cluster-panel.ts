/**
 * The dashboard's Cluster panel: the nodes (id, URL, controller badge,
 * up/down) and every partition's leader, ISR against its replicas, high
 * watermark and follower lag, drawn from a `ClusterOverview`
 * (cluster-overview.ts). It owns the subtree of the element it is given and
 * only writes DOM; each render replaces what the last one drew.
 */
import { formatCount } from './activity-view.ts';
import type { ClusterOverview, NodeOverview, PartitionOverview } from './cluster-overview.ts';

const COLUMNS = ['topic', 'partition', 'leader', 'epoch', 'replicas', 'in-sync', 'high watermark', 'log end', 'lag (records)', 'lag (time)'];

function element<K extends keyof HTMLElementTagNameMap>(tag: K, props: { className?: string; text?: string; title?: string } = {}, ...children: Node[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  if (props.className) el.className = props.className;
  if (props.text !== undefined) el.textContent = props.text;
  if (props.title) el.title = props.title;
  el.append(...children);
  return el;
}

/** 15 ms, 1.2 s, 3 min 20 s. */
export function formatDurationMs(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  const minutes = Math.floor(ms / 60_000);
  return `${minutes} min ${Math.round((ms % 60_000) / 1000)} s`;
}

const NODE_STATE_LABEL: Record<NodeOverview['state'], string> = { up: 'up', unreachable: 'not answering', down: 'down' };

export class ClusterPanel {
  private readonly summary = element('span', { className: 'legend' });
  private readonly nodes = element('ul', { className: 'brokers cluster-nodes' });
  private readonly rows = element('tbody');
  private readonly note = element('p', { className: 'sub' });

  constructor(private readonly root: HTMLElement) {
    this.summary.dataset.testid = 'cluster-summary';
    this.nodes.dataset.testid = 'cluster-nodes';
    this.rows.dataset.testid = 'cluster-partitions';
    this.nodes.append(element('li', { className: 'empty', text: 'waiting for /v1/cluster…' }));
    const table = element('table', { className: 'partitions cluster-partitions' },
      element('thead', {}, element('tr', {}, ...COLUMNS.map((c) => element('th', { text: c })))), this.rows);
    root.replaceChildren(
      element('div', { className: 'card-head' }, element('h2', { text: 'Cluster' }), this.summary),
      element('div', { className: 'cluster-body' }, this.nodes, element('div', { className: 'cluster-table' }, table)),
      this.note,
    );
  }

  render(overview: ClusterOverview): void {
    this.root.dataset.state = 'ok';
    this.root.dataset.controller = overview.controller === null ? '' : String(overview.controller);
    this.summary.textContent = summaryText(overview);
    this.nodes.replaceChildren(...overview.nodes.map(nodeItem));
    this.rows.replaceChildren(...overview.partitions.map(partitionRow));
    if (overview.partitions.length === 0) {
      this.rows.replaceChildren(element('tr', {}, Object.assign(element('td', { className: 'empty', text: 'no partitions yet' }), { colSpan: COLUMNS.length })));
    }
    this.note.textContent = overview.omittedPartitions > 0
      ? `${formatCount(overview.omittedPartitions)} more partitions not shown (the offline and under-replicated ones come first).`
      : 'Lag: records and time each follower is behind its leader, from the leader\'s own /v1/cluster.';
  }

  /** The page's broker did not answer: keep the last drawing, say so. */
  renderError(error: unknown): void {
    this.root.dataset.state = 'error';
    this.summary.textContent = `cluster view unavailable: ${(error as Error).message}`;
  }
}

function summaryText(o: ClusterOverview): string {
  const up = o.nodes.filter((n) => n.state === 'up').length;
  const parts = o.isSingleNode
    ? ['single node (no etcd)']
    : [
      `${up} of ${o.nodes.length} node${o.nodes.length === 1 ? '' : 's'} up`,
      o.controller === null ? 'no controller' : `controller #${o.controller}`,
      o.etcdConnected ? 'etcd connected' : `etcd unreachable from #${o.brokerId}`,
    ];
  parts.push(`${formatCount(o.totals.partitions)} partition${o.totals.partitions === 1 ? '' : 's'}`,
    `${o.totals.underReplicated} under-replicated`, `${o.totals.offline} offline`);
  return parts.join(' · ');
}

function nodeItem(node: NodeOverview): HTMLLIElement {
  const badges = element('span', { className: 'badges' });
  if (node.isController) badges.append(element('span', { className: 'badge controller', text: 'controller' }));
  if (node.isSelf) badges.append(element('span', { className: 'badge self', text: 'this page' }));
  const item = element('li', { className: `node-${node.state}`, ...(node.problem ? { title: node.problem } : {}) },
    element('span', { className: 'dot' }),
    element('strong', {}, document.createTextNode(`broker #${node.id} `), badges),
    element('span', { className: 'role', text: `${NODE_STATE_LABEL[node.state]} · leads ${node.leads} · hosts ${node.hosts}` }),
    element('span', { className: 'sub', text: node.url || 'URL not registered' }),
  );
  item.dataset.brokerId = String(node.id);
  item.dataset.state = node.state;
  item.dataset.controller = String(node.isController);
  return item;
}

function brokerList(ids: readonly number[], isr: readonly number[]): HTMLTableCellElement {
  const cell = element('td');
  ids.forEach((brokerId, i) => {
    if (i > 0) cell.append(' ');
    const inSync = isr.includes(brokerId);
    cell.append(element('span', { className: inSync ? '' : 'out-of-isr', text: `#${brokerId}`, ...(inSync ? {} : { title: 'not in sync' }) }));
  });
  return cell;
}

function lagTitle(p: PartitionOverview): string {
  if (p.followers === null) return p.leader < 0 ? 'no leader' : `leader #${p.leader} did not answer this page`;
  return p.followers.map((f) => `#${f.brokerId}: ${formatCount(f.lagRecords)} records, ${formatDurationMs(f.lagMs)}${f.inIsr ? '' : ' (out of ISR)'}`).join('\n') || 'no followers';
}

function partitionRow(p: PartitionOverview): HTMLTableRowElement {
  // No answer from the leader, or no followers to lag (one replica): nothing to show.
  const hasLag = p.followers !== null && p.followers.length > 0;
  const lagClass = !hasLag ? 'empty' : p.maxLagRecords === 0 ? 'lag-ok' : 'lag-behind';
  const title = lagTitle(p);
  const row = element('tr', { className: `health-${p.health}` },
    element('td', { text: p.topic }),
    element('td', { text: String(p.partition) }),
    element('td', { text: p.leader < 0 ? 'offline' : `#${p.leader}`, className: p.leader < 0 ? 'isr-short' : '' }),
    element('td', { text: String(p.leaderEpoch) }),
    brokerList(p.replicas, p.isr),
    element('td', { text: p.isr.map((r) => `#${r}`).join(' ') || 'none', className: p.health === 'ok' ? '' : 'isr-short' }),
    element('td', { text: formatCount(p.highWatermark) }),
    element('td', { text: formatCount(p.logEndOffset) }),
    element('td', { text: hasLag ? formatCount(p.maxLagRecords ?? 0) : '—', className: lagClass, title }),
    element('td', { text: hasLag ? formatDurationMs(p.maxLagMs ?? 0) : '—', className: lagClass, title }),
  );
  row.dataset.topic = p.topic;
  row.dataset.partition = String(p.partition);
  row.dataset.health = p.health;
  return row;
}
