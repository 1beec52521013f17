import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createMetrics } from './metrics.ts';

test('registry exposes every named Runnel metric and process metrics', async () => {
  const m = createMetrics();
  m.recordsIn.inc({ topic: 't' }, 5);
  m.produceLatency.observe({ transport: 'http' }, 0.002);
  m.httpRequests.inc({ route: '/v1/topics', status: '200' });
  const text = await m.registry.metrics();
  for (const name of ['runnel_records_in_total', 'runnel_bytes_in_total', 'runnel_records_out_total', 'runnel_bytes_out_total',
    'runnel_produce_latency_seconds', 'runnel_connections', 'runnel_subscriptions', 'runnel_consumer_lag',
    'runnel_fsync_latency_seconds', 'runnel_backpressure_drops_total', 'runnel_http_requests_total', 'process_cpu_user_seconds_total']) {
    assert.match(text, new RegExp(`^# TYPE ${name} `, 'm'), name);
  }
  assert.match(text, /runnel_records_in_total\{topic="t"\} 5/);
});

test('consumerLag is filled by onCollect callbacks and reset between scrapes', async () => {
  const m = createMetrics();
  let lag: number | null = 7;
  const off = m.onCollect(() => {
    if (lag !== null) m.consumerLag.set({ group: 'g', topic: 't', partition: '0' }, lag);
  });
  assert.match(await m.registry.metrics(), /runnel_consumer_lag\{group="g",topic="t",partition="0"\} 7/);
  lag = null;
  assert.doesNotMatch(await m.registry.metrics(), /runnel_consumer_lag\{group="g"/);
  lag = 3;
  off();
  assert.doesNotMatch(await m.registry.metrics(), /runnel_consumer_lag\{group="g"/);
});

test('two brokers in one process get independent registries', async () => {
  const a = createMetrics();
  const b = createMetrics();
  a.recordsIn.inc({ topic: 'x' });
  assert.doesNotMatch(await b.registry.metrics(), /runnel_records_in_total\{topic="x"\}/);
});

test('cluster gauges: every filler runs once per scrape, after all cluster gauges were reset', async () => {
  const m = createMetrics();
  let runs = 0;
  let led: number | null = 4;
  m.onClusterCollect(() => {
    runs++;
    if (led === null) return;
    m.partitionsLed.set(led);
    m.partitionIsrSize.set({ topic: 't', partition: '0' }, 2);
  });
  const first = await m.registry.metrics();
  assert.equal(runs, 1, 'one run for the eleven cluster gauges of one scrape');
  assert.match(first, /^runnel_partitions_led 4$/m);
  assert.match(first, /^runnel_partition_isr_size\{topic="t",partition="0"\} 2$/m);
  led = null;
  const second = await m.registry.metrics();
  assert.equal(runs, 2);
  assert.doesNotMatch(second, /runnel_partition_isr_size\{/, 'a partition that vanished leaves no stale series');
  assert.match(second, /^runnel_partitions_led 0$/m, 'an unlabelled gauge is back at 0');
});
