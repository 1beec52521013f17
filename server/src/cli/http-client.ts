/**
 * The CLI's client of the Runnel HTTP API (docs/http.md): one method per
 * route it uses. Every failure becomes a CliError carrying the API's error
 * code, so commands print `error: CODE: message` and exit 1.
 */
export class CliError extends Error {
  override readonly name = 'CliError';
  constructor(readonly code: string, message: string) {
    super(message);
  }
}

export interface TopicInfo { name: string; topicId: string; partitions: number; replicationFactor: number; retentionMs: number; retentionBytes: number; createdAtMs: number }
export interface PartitionInfo { partition: number; leader: number; replicas: number[]; isr: number[]; logStartOffset: number; highWatermark: number; logEndOffset: number }
export interface JsonRecord { offset: number; timestamp: number; key: string | null; value: unknown; headers: Record<string, string | null> }
export interface FetchAnswer { records: JsonRecord[]; nextOffset: number; highWatermark: number; logStartOffset: number }
export interface CommittedOffset { topic: string; partition: number; offset: number; metadata: string }
export interface ProduceRecord { key?: string | null; value: unknown; headers?: Record<string, string>; partition?: number }

export class RunnelHttpClient {
  /** `token`: sent as `Authorization: Bearer` to brokers with auth (`runnel token create` mints one). */
  constructor(readonly baseUrl: string, private readonly token?: string) {}

  private async call<T>(method: string, path: string, body?: unknown, signal?: AbortSignal): Promise<T> {
    let res: Response;
    try {
      res = await fetch(new URL(path, this.baseUrl), {
        method,
        headers: {
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
          ...(this.token ? { authorization: `Bearer ${this.token}` } : {}),
        },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        ...(signal ? { signal } : {}),
      });
    } catch (cause) {
      if (signal?.aborted) throw cause;
      throw new CliError('NOT_CONNECTED', `cannot reach ${this.baseUrl}: ${(cause as Error & { cause?: Error }).cause?.message ?? (cause as Error).message} (is \`runnel start\` running? set --url or RUNNEL_URL)`);
    }
    const text = await res.text();
    let json: unknown;
    try {
      json = text === '' ? {} : JSON.parse(text);
    } catch {
      throw new CliError('UNKNOWN_SERVER_ERROR', `${method} ${path}: HTTP ${res.status}, not JSON: ${text.slice(0, 200)}`);
    }
    if (!res.ok) {
      const error = (json as { error?: { code?: string; message?: string } }).error;
      throw new CliError(error?.code ?? `HTTP_${res.status}`, error?.message ?? `${method} ${path}: HTTP ${res.status}`);
    }
    return json as T;
  }

  createTopic(spec: { name: string; partitions?: number; replicationFactor?: number; minInsyncReplicas?: number; retentionMs?: number; retentionBytes?: number }): Promise<TopicInfo> {
    return this.call('POST', '/v1/topics', spec);
  }

  async listTopics(): Promise<TopicInfo[]> {
    return (await this.call<{ topics: TopicInfo[] }>('GET', '/v1/topics')).topics;
  }

  describeTopic(name: string): Promise<{ topic: TopicInfo; partitions: PartitionInfo[] }> {
    return this.call('GET', `/v1/topics/${encodeURIComponent(name)}`);
  }

  deleteTopic(name: string): Promise<{ deleted: string }> {
    return this.call('DELETE', `/v1/topics/${encodeURIComponent(name)}`);
  }

  produce(topic: string, records: ProduceRecord[]): Promise<{ offsets: { partition: number; offset: number }[] }> {
    return this.call('POST', `/v1/topics/${encodeURIComponent(topic)}/records`, { records });
  }

  fetch(topic: string, partition: number, offset: number | 'earliest' | 'latest', maxRecords: number, maxWaitMs: number, signal?: AbortSignal): Promise<FetchAnswer> {
    const q = new URLSearchParams({ offset: String(offset), maxRecords: String(maxRecords), maxWaitMs: String(maxWaitMs) });
    return this.call('GET', `/v1/topics/${encodeURIComponent(topic)}/partitions/${partition}/records?${q}`, undefined, signal);
  }

  async fetchOffsets(group: string, topic: string): Promise<CommittedOffset[]> {
    return (await this.call<{ offsets: CommittedOffset[] }>('GET', `/v1/groups/${encodeURIComponent(group)}/offsets?topic=${encodeURIComponent(topic)}`)).offsets;
  }

  commitOffsets(group: string, offsets: { topic: string; partition: number; offset: number }[]): Promise<{ committed: number }> {
    return this.call('POST', `/v1/groups/${encodeURIComponent(group)}/offsets`, { offsets });
  }
}
