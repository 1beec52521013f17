/**
 * Renders cluster health from the SDK's metadata (brokers, and per partition
 * the leader, replicas, in-sync replicas, log start offset, high watermark)
 * next to where the dashboard's own consumer has counted to, which gives the
 * consumer lag: highWatermark − next offset to count.
 */
import type { PartitionMetadata } from '@runnel/client/codec';
import type { ActivityAggregates } from './aggregates.ts';
import { formatCount } from './activity-view.ts';
import { byId } from './dom.ts';

/** What the dashboard needs from `client.metadata()`. */
export interface ClusterMetadata {
  brokers: { id: number; url: string }[];
  topics: { name: string; topicId: string; errorCode: number; partitions: PartitionMetadata[] }[];
}

function cell(text: string, className = ''): HTMLTableCellElement {
  const td = document.createElement('td');
  td.textContent = text;
  if (className) td.className = className;
  return td;
}

export class ClusterView {
  private readonly rows = byId('partition-rows');
  private readonly brokers = byId('brokers');
  private readonly summary = byId('cluster-summary');
  private readonly topicId = byId('topic-id');
  private readonly totalLag = byId('total-lag');

  render(metadata: ClusterMetadata, topic: string, aggregates: ActivityAggregates): void {
    const described = metadata.topics.find((t) => t.name === topic && t.errorCode === 0);
    const partitions = [...(described?.partitions ?? [])].sort((a, b) => a.partition - b.partition);
    this.topicId.textContent = described ? `topic ${topic} · id ${described.topicId}` : `topic ${topic} not created yet`;
    let lagSum = 0;
    this.rows.replaceChildren(...partitions.map((p) => {
      const counted = aggregates.nextOffset(p.partition) ?? p.logStartOffset;
      const lag = Math.max(0, p.highWatermark - counted);
      lagSum += lag;
      const row = document.createElement('tr');
      row.dataset.partition = String(p.partition);
      row.dataset.highWatermark = String(p.highWatermark);
      row.append(
        cell(String(p.partition)),
        cell(p.leader < 0 ? 'none' : `#${p.leader}`, p.leader < 0 ? 'isr-short' : ''),
        cell(p.replicas.map((r) => `#${r}`).join(' ')),
        cell(p.isr.map((r) => `#${r}`).join(' '), p.isr.length < p.replicas.length ? 'isr-short' : ''),
        cell(formatCount(p.logStartOffset)),
        cell(formatCount(p.highWatermark)),
        cell(formatCount(counted)),
        cell(formatCount(lag), lag === 0 ? 'lag-ok' : 'lag-behind'),
      );
      return row;
    }));
    if (partitions.length === 0) this.rows.replaceChildren(Object.assign(document.createElement('tr'), { innerHTML: '<td colspan="8" class="empty">no partitions yet: produce some traffic</td>' }));
    this.totalLag.textContent = formatCount(lagSum);
    this.renderBrokers(metadata, partitions);
  }

  private renderBrokers(metadata: ClusterMetadata, partitions: PartitionMetadata[]): void {
    const allPartitions = metadata.topics.filter((t) => t.errorCode === 0).flatMap((t) => t.partitions);
    this.brokers.replaceChildren(...[...metadata.brokers].sort((a, b) => a.id - b.id).map((broker) => {
      const leads = allPartitions.filter((p) => p.leader === broker.id).length;
      const hosts = allPartitions.filter((p) => p.replicas.includes(broker.id)).length;
      const item = document.createElement('li');
      const dot = document.createElement('span');
      dot.className = 'dot';
      const name = document.createElement('strong');
      name.textContent = `broker #${broker.id}`;
      const url = document.createElement('span');
      url.className = 'sub';
      url.textContent = broker.url;
      const role = document.createElement('span');
      role.className = 'role';
      role.textContent = `leads ${leads} · hosts ${hosts}`;
      item.append(dot, name, role, url);
      return item;
    }));
    const underReplicated = partitions.filter((p) => p.isr.length < p.replicas.length).length;
    const offline = partitions.filter((p) => p.leader < 0).length;
    const topicCount = metadata.topics.filter((t) => t.errorCode === 0).length;
    this.summary.textContent = `${metadata.brokers.length} node${metadata.brokers.length === 1 ? '' : 's'} · ${topicCount} topic${topicCount === 1 ? '' : 's'} · `
      + `${underReplicated} under-replicated · ${offline} offline partition${offline === 1 ? '' : 's'}`;
  }
}
