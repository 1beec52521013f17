/**
 * `runnel produce <topic>`: one record per stdin line. A line that parses as
 * JSON is stored as that JSON value, any other line as a string; blank lines
 * are skipped. Lines are sent in batches (records and bytes bounded below the
 * broker's HTTP limits), one request at a time so per-key order is kept.
 */
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { CliError, type ProduceRecord, type RunnelHttpClient } from './http-client.ts';
import type { Output } from './output.ts';

/** Records per request; below the default maxHttpRecords (10,000). */
const BATCH_RECORDS = 1000;
/** Approximate JSON bytes per request; below the default maxHttpBodyBytes (1 MiB). */
const BATCH_BYTES = 512 * 1024;

export function recordFromLine(line: string, keyField: string | undefined, partition: number | undefined): ProduceRecord {
  let value: unknown = line;
  try {
    value = JSON.parse(line);
  } catch {
    // not JSON: stored as a string
  }
  const record: ProduceRecord = { value };
  if (keyField !== undefined && value !== null && typeof value === 'object' && keyField in value) {
    const key = (value as Record<string, unknown>)[keyField];
    record.key = typeof key === 'string' ? key : JSON.stringify(key);
  }
  if (partition !== undefined) record.partition = partition;
  return record;
}

export async function runProduceCommand(args: string[], client: RunnelHttpClient, out: Output, input: NodeJS.ReadableStream = process.stdin): Promise<void> {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: { 'key-field': { type: 'string' }, partition: { type: 'string' } } });
  if (positionals.length !== 1) throw new CliError('INVALID_REQUEST', 'usage: runnel produce <topic> [--key-field field] [--partition p] < lines');
  const topic = positionals[0];
  const partition = values.partition === undefined ? undefined : Number(values.partition);
  if (partition !== undefined && !(Number.isInteger(partition) && partition >= 0)) throw new CliError('INVALID_REQUEST', `--partition must be an integer >= 0, got '${values.partition}'`);

  const ranges = new Map<number, { first: number; last: number }>();
  let produced = 0;
  const started = Date.now();
  let batch: ProduceRecord[] = [];
  let batchBytes = 0;
  const flush = async () => {
    if (batch.length === 0) return;
    const { offsets } = await client.produce(topic, batch);
    for (const o of offsets) {
      const r = ranges.get(o.partition);
      if (r) r.last = Math.max(r.last, o.offset);
      else ranges.set(o.partition, { first: o.offset, last: o.offset });
    }
    produced += batch.length;
    batch = [];
    batchBytes = 0;
    const seconds = (Date.now() - started) / 1000;
    if (seconds > 1) out.progress(`produced ${produced} records (${Math.round(produced / seconds)} rec/s)`);
  };
  for await (const line of createInterface({ input, crlfDelay: Infinity })) {
    if (line.trim() === '') continue;
    batch.push(recordFromLine(line, values['key-field'], partition));
    batchBytes += line.length + 16;
    if (batch.length >= BATCH_RECORDS || batchBytes >= BATCH_BYTES) await flush();
  }
  await flush();
  out.endProgress();
  const partitions = [...ranges].sort(([a], [b]) => a - b).map(([p, r]) => ({ partition: p, firstOffset: r.first, lastOffset: r.last }));
  out.result({ topic, records: produced, partitions }, () => {
    const detail = partitions.map((p) => `p${p.partition}: ${p.firstOffset}-${p.lastOffset}`).join(', ');
    out.line(`produced ${produced} records to ${topic}${detail ? ` (offsets ${detail})` : ''}`);
  });
}
