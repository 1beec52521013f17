/**
 * Renders the activity topic's partitions from the SDK's metadata (per
 * partition the leader, replicas, in-sync replicas, log start offset, high
 * watermark) next to where the dashboard's own consumer has counted to,
 * which gives the consumer lag: highWatermark − next offset to count. The
 * cluster as a whole is the Cluster panel's (cluster-panel.ts).
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

export class PartitionsView {
  private readonly rows = byId('partition-rows');
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
  }
}
