/**
 * Renders the activity numbers (totals, rate, active users, top pages, event
 * types) and the rate chart from ActivityAggregates. Pure DOM writes, no
 * state of its own beyond the elements it owns.
 */
import { ACTIVITY_TYPES } from '../activity.ts';
import { aggregateLimits, type ActivityAggregates } from './aggregates.ts';
import type { RateChart } from './rate-chart.ts';
import { byId } from './dom.ts';

/** Seconds shown on the chart when the counting window is shorter. */
const MIN_CHART_SECONDS = 60;
/** Seconds averaged for the "events / second" figure (the current, partial second excluded). */
const RATE_AVERAGE_SECONDS = 5;
const TOP_PAGES_SHOWN = 7;

const TYPE_LABELS: Record<(typeof ACTIVITY_TYPES)[number], string> = {
  page_view: 'page views',
  click: 'clicks',
  scroll: 'scroll depth',
  add_to_cart: 'add to cart',
  checkout: 'checkouts',
};

export const formatCount = (n: number): string => n.toLocaleString('en-US');

function barItem(label: string, count: number, max: number, title?: string): HTMLLIElement {
  const item = document.createElement('li');
  const fill = document.createElement('span');
  fill.className = 'fill';
  fill.style.width = `${max > 0 ? Math.max(2, (count / max) * 100) : 0}%`;
  const name = document.createElement('span');
  name.textContent = label;
  if (title) name.title = title;
  const value = document.createElement('span');
  value.className = 'count';
  value.textContent = formatCount(count);
  item.append(fill, name, value);
  return item;
}

export class ActivityView {
  private readonly total = byId('total-events');
  private readonly totalSince = byId('total-since');
  private readonly rate = byId('events-per-second');
  private readonly activeUsers = byId('active-users');
  private readonly topPages = byId('top-pages');
  private readonly eventTypes = byId('event-types');
  private readonly chartRange = byId('chart-range');

  constructor(private readonly chart: RateChart) {}

  render(aggregates: ActivityAggregates, nowMs: number): void {
    const nowSecond = Math.floor(nowMs / 1000);
    this.total.textContent = formatCount(aggregates.totalEvents);
    this.total.dataset.count = String(aggregates.totalEvents);
    this.totalSince.textContent = aggregates.fromTimestampMs === 0
      ? 'counted since the beginning of the log'
      : `counted since ${new Date(aggregates.fromTimestampMs).toLocaleString()}`;
    const [, recent] = aggregates.rateSeries(nowSecond - RATE_AVERAGE_SECONDS, nowSecond - 1);
    this.rate.textContent = formatCount(Math.round(recent.reduce((a, b) => a + b, 0) / RATE_AVERAGE_SECONDS));
    this.activeUsers.textContent = formatCount(aggregates.activeUsers(nowMs));
    this.renderTopPages(aggregates);
    this.renderEventTypes(aggregates);
    this.renderChart(aggregates, nowSecond);
  }

  private renderTopPages(aggregates: ActivityAggregates): void {
    const pages = aggregates.topPages(TOP_PAGES_SHOWN);
    if (pages.length === 0) return;
    const max = pages[0].views;
    this.topPages.replaceChildren(...pages.map(({ path, views }) => barItem(path.replace(/^\/shop\//, ''), views, max, path)));
  }

  private renderEventTypes(aggregates: ActivityAggregates): void {
    const max = Math.max(...ACTIVITY_TYPES.map((type) => aggregates.byType[type]));
    this.eventTypes.replaceChildren(...ACTIVITY_TYPES.map((type) => {
      const item = barItem(TYPE_LABELS[type], aggregates.byType[type], max);
      item.dataset.type = type;
      return item;
    }));
  }

  private renderChart(aggregates: ActivityAggregates, nowSecond: number): void {
    // Show from the counting window's start (a replay shows what it re-read), at least MIN_CHART_SECONDS.
    const first = aggregates.firstSecond() ?? nowSecond;
    const windowStart = aggregates.fromTimestampMs > 0 ? Math.floor(aggregates.fromTimestampMs / 1000) : first;
    // Clamped to the buckets the aggregates keep: a bogus event time must not make a billion-point chart.
    const fromSecond = Math.max(nowSecond - aggregateLimits.maxRateBuckets, Math.min(nowSecond - MIN_CHART_SECONDS, Math.max(windowStart, first)));
    const [xs, ys] = aggregates.rateSeries(fromSecond, nowSecond);
    this.chart.update(xs, ys);
    const minutes = Math.round((nowSecond - fromSecond) / 60);
    this.chartRange.textContent = `last ${minutes} min · by event time`;
  }
}
