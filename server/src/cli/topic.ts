/** `runnel topic create|list|describe|delete` over the HTTP API. */
import { parseArgs } from 'node:util';
import { CliError, type RunnelHttpClient } from './http-client.ts';
import { formatBytes, formatDurationMs, type Output } from './output.ts';

function intOption(name: string, raw: string | undefined, min: number): number | undefined {
  if (raw === undefined) return undefined;
  if (!/^-?\d+$/.test(raw) || Number(raw) < min) throw new CliError('INVALID_REQUEST', `--${name} must be an integer >= ${min}, got '${raw}'`);
  return Number(raw);
}

function needName(positionals: string[], usage: string): string {
  if (positionals.length !== 1) throw new CliError('INVALID_REQUEST', `usage: ${usage}`);
  return positionals[0];
}

export async function runTopicCommand(args: string[], client: RunnelHttpClient, out: Output): Promise<void> {
  const [sub, ...rest] = args;
  switch (sub) {
    case 'create': {
      const { values, positionals } = parseArgs({
        args: rest, allowPositionals: true,
        options: { partitions: { type: 'string' }, 'replication-factor': { type: 'string' }, 'min-insync-replicas': { type: 'string' }, 'retention-ms': { type: 'string' }, 'retention-bytes': { type: 'string' } },
      });
      const name = needName(positionals, 'runnel topic create <name> [--partitions N] [--replication-factor R] [--min-insync-replicas M] [--retention-ms MS] [--retention-bytes B]');
      const spec = {
        name,
        partitions: intOption('partitions', values.partitions, 1),
        replicationFactor: intOption('replication-factor', values['replication-factor'], 1),
        minInsyncReplicas: intOption('min-insync-replicas', values['min-insync-replicas'], 1),
        retentionMs: intOption('retention-ms', values['retention-ms'], -1),
        retentionBytes: intOption('retention-bytes', values['retention-bytes'], -1),
      };
      const info = await client.createTopic(spec);
      out.result(info, () => out.line(`created topic ${info.name} (${info.partitions} partitions, replication factor ${info.replicationFactor}, id ${info.topicId})`));
      return;
    }
    case 'list': {
      parseArgs({ args: rest, options: {} });
      const topics = await client.listTopics();
      out.result({ topics }, () => {
        if (topics.length === 0) return out.line('no topics');
        out.table(['TOPIC', 'PARTITIONS', 'RF', 'RETENTION', 'RETENTION-BYTES', 'TOPIC-ID'],
          topics.map((t) => [t.name, t.partitions, t.replicationFactor, formatDurationMs(t.retentionMs), formatBytes(t.retentionBytes), t.topicId]));
      });
      return;
    }
    case 'describe': {
      const { positionals } = parseArgs({ args: rest, allowPositionals: true, options: {} });
      const described = await client.describeTopic(needName(positionals, 'runnel topic describe <name>'));
      out.result(described, () => {
        const t = described.topic;
        out.line(`topic ${t.name}  id ${t.topicId}  partitions ${t.partitions}  replication factor ${t.replicationFactor}  retention ${formatDurationMs(t.retentionMs)} / ${formatBytes(t.retentionBytes)}`);
        out.table(['PARTITION', 'LEADER', 'REPLICAS', 'ISR', 'LOG-START', 'HIGH-WATERMARK', 'LOG-END'],
          described.partitions.map((p) => [p.partition, p.leader, p.replicas.join(','), p.isr.join(','), p.logStartOffset, p.highWatermark, p.logEndOffset]));
      });
      return;
    }
    case 'delete': {
      const { positionals } = parseArgs({ args: rest, allowPositionals: true, options: {} });
      const result = await client.deleteTopic(needName(positionals, 'runnel topic delete <name>'));
      out.result(result, () => out.line(`deleted topic ${result.deleted}`));
      return;
    }
    default:
      throw new CliError('INVALID_REQUEST', `unknown topic command '${sub ?? ''}'; use create, list, describe or delete`);
  }
}
