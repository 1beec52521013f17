/**
 * The broker's HTTP API (`/v1`, docs/http.md) as the tests use
 * it: create and describe topics, produce JSON records, read a partition's
 * whole log (the ground truth a test compares deliveries against) and read
 * one Prometheus gauge from `/metrics`.
 */

export interface PartitionState { partition: number; logStartOffset: number; highWatermark: number }
export interface LogRecord { offset: number; timestamp: number; key: string | null; value: unknown }

/** Records per read when draining a partition (the broker caps it by maxHttpRecords). */
const READ_BATCH_RECORDS = 5000;

export class BrokerHttp {
  constructor(readonly baseUrl: string) {}

  async request(method: string, path: string, body?: unknown): Promise<{ status: number; json: any }> {
    const response = await fetch(`${this.baseUrl}${path}`, {
      method,
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    let json: unknown = text;
    try { json = text ? JSON.parse(text) : undefined; } catch { /* not JSON: keep the text */ }
    return { status: response.status, json };
  }

  /** Creates a topic (replication factor 1) and returns its id. */
  async createTopic(name: string, partitions: number): Promise<string> {
    const { status, json } = await this.request('POST', '/v1/topics', { name, partitions, replicationFactor: 1 });
    if (status !== 200 && status !== 201) throw new Error(`create topic ${name}: HTTP ${status} ${JSON.stringify(json)}`);
    return json.topicId ?? json.topic?.topicId;
  }

  async partitions(topic: string): Promise<PartitionState[]> {
    const { status, json } = await this.request('GET', `/v1/topics/${encodeURIComponent(topic)}`);
    if (status !== 200) throw new Error(`describe ${topic}: HTTP ${status} ${JSON.stringify(json)}`);
    return json.partitions;
  }

  /** Sum of the partitions' high watermarks (= records in a topic that started empty). */
  async recordCount(topic: string): Promise<number> {
    return (await this.partitions(topic)).reduce((sum, p) => sum + p.highWatermark - p.logStartOffset, 0);
  }

  /** Appends JSON values (one record each) durably; answers their offsets. */
  async produce(topic: string, records: { value: unknown; key?: string; partition?: number }[]): Promise<{ partition: number; offset: number }[]> {
    const { status, json } = await this.request('POST', `/v1/topics/${encodeURIComponent(topic)}/records`, { records });
    if (status !== 200) throw new Error(`produce to ${topic}: HTTP ${status} ${JSON.stringify(json)}`);
    return json.offsets;
  }

  /** Every record of `partition` below the high watermark, in offset order. */
  async readLog(topic: string, partition: number): Promise<LogRecord[]> {
    const out: LogRecord[] = [];
    let offset = 0;
    for (;;) {
      const { status, json } = await this.request('GET', `/v1/topics/${encodeURIComponent(topic)}/partitions/${partition}/records?offset=${offset}&maxRecords=${READ_BATCH_RECORDS}&maxWaitMs=0`);
      if (status !== 200) throw new Error(`read ${topic}/${partition}@${offset}: HTTP ${status} ${JSON.stringify(json)}`);
      out.push(...json.records);
      if (json.records.length === 0 || json.nextOffset >= json.highWatermark) return out;
      offset = json.nextOffset;
    }
  }

  /** The value of a Prometheus sample without labels (e.g. `runnel_connections`), or NaN when absent. */
  async metric(name: string): Promise<number> {
    const text = await (await fetch(`${this.baseUrl}/metrics`)).text();
    const line = text.split('\n').find((l) => l.startsWith(`${name} `));
    return line ? Number(line.slice(name.length + 1)) : Number.NaN;
  }
}
