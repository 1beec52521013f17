/**
 * `runnel consume <topic>`: one long-poll loop per partition over
 * `GET /v1/topics/:topic/partitions/:p/records`, printing records as they
 * arrive (per-partition order kept). With `--group g` it starts from the
 * group's committed offsets (partitions without one start at `--from`) and
 * commits the next offset after each printed response, so a rerun resumes.
 * Stops at `--max N` records, after `--timeout-ms` without records, or on
 * SIGINT/SIGTERM.
 */
import { parseArgs } from 'node:util';
import { CliError, type JsonRecord, type RunnelHttpClient } from './http-client.ts';
import type { Output } from './output.ts';

/** Long-poll wait per request; short enough for Ctrl-C and --timeout-ms to be prompt. */
const POLL_WAIT_MS = 1000;
const POLL_RECORDS = 500;

type Start = number | 'earliest' | 'latest';

function parseFrom(raw: string | undefined): Start {
  if (raw === undefined || raw === 'latest') return 'latest';
  if (raw === 'earliest') return 'earliest';
  if (/^\d+$/.test(raw)) return Number(raw);
  throw new CliError('INVALID_REQUEST', `--from must be earliest, latest or an offset, got '${raw}'`);
}

function positiveInt(name: string, raw: string | undefined): number | undefined {
  if (raw === undefined) return undefined;
  if (!/^\d+$/.test(raw) || Number(raw) < 1) throw new CliError('INVALID_REQUEST', `--${name} must be an integer >= 1, got '${raw}'`);
  return Number(raw);
}

/**
 * A record as read over HTTP: a value that is not JSON within the broker's limits (too deep, not
 * JSON, not UTF-8) comes as a string with `valueEncoding` (docs/http.md); it is printed like any other.
 */
type ReadRecord = JsonRecord & { valueEncoding?: 'text' | 'base64' };

function humanLine(r: ReadRecord): string {
  // NB: base64 is marked so it is not mistaken for the record's text.
  const value = r.valueEncoding === 'base64' ? `base64:${r.value as string}` : typeof r.value === 'string' ? r.value : JSON.stringify(r.value);
  return r.key === null ? value : `${r.key}\t${value}`;
}

export async function runConsumeCommand(args: string[], client: RunnelHttpClient, out: Output): Promise<void> {
  const { values, positionals } = parseArgs({
    args, allowPositionals: true,
    options: { from: { type: 'string' }, partition: { type: 'string' }, group: { type: 'string' }, max: { type: 'string' }, 'timeout-ms': { type: 'string' } },
  });
  if (positionals.length !== 1) throw new CliError('INVALID_REQUEST', 'usage: runnel consume <topic> [--from earliest|latest|<offset>] [--partition p] [--group g] [--max N] [--timeout-ms MS]');
  const topic = positionals[0];
  const from = parseFrom(values.from);
  const max = positiveInt('max', values.max);
  const idleMs = positiveInt('timeout-ms', values['timeout-ms']);
  const group = values.group;

  const { partitions: infos } = await client.describeTopic(topic);
  let partitions = infos.map((p) => p.partition);
  if (values.partition !== undefined) {
    const p = Number(values.partition);
    if (!partitions.includes(p)) throw new CliError('UNKNOWN_TOPIC_OR_PARTITION', `topic ${topic} has no partition '${values.partition}'`);
    partitions = [p];
  }
  const start = new Map<number, Start>(partitions.map((p) => [p, from]));
  if (group !== undefined) {
    for (const o of await client.fetchOffsets(group, topic)) if (start.has(o.partition)) start.set(o.partition, o.offset);
  }

  const stop = new AbortController();
  const onSignal = () => stop.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  let consumed = 0;
  let lastRecordAt = Date.now();
  const idleTimer = idleMs === undefined ? undefined : setInterval(() => {
    if (Date.now() - lastRecordAt >= idleMs) stop.abort();
  }, Math.min(idleMs, 200));

  const consumePartition = async (partition: number) => {
    let offset: Start = start.get(partition)!;
    while (!stop.signal.aborted) {
      const wanted = max === undefined ? POLL_RECORDS : Math.min(POLL_RECORDS, max - consumed);
      if (wanted <= 0) return stop.abort();
      let answer;
      try {
        answer = await client.fetch(topic, partition, offset, wanted, POLL_WAIT_MS, stop.signal);
      } catch (error) {
        if (stop.signal.aborted) return;
        throw error;
      }
      // Another partition may have reached --max while this poll was in flight.
      const records = max === undefined ? answer.records : answer.records.slice(0, Math.max(0, max - consumed));
      for (const r of records) {
        if (out.json) out.line(JSON.stringify({ topic, partition, ...r }));
        else out.line(humanLine(r));
      }
      consumed += records.length;
      if (records.length > 0) lastRecordAt = Date.now();
      offset = records.length < answer.records.length ? records.at(-1)!.offset + 1 : answer.nextOffset;
      if (group !== undefined && records.length > 0) await client.commitOffsets(group, [{ topic, partition, offset }]);
      if (max !== undefined && consumed >= max) stop.abort();
    }
  };
  try {
    await Promise.all(partitions.map(consumePartition));
  } finally {
    if (idleTimer) clearInterval(idleTimer);
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  process.stderr.write(`consumed ${consumed} records from ${topic}${group ? ` (group ${group}, offsets committed)` : ''}\n`);
}
