/**
 * A steady Node-side producer for consumer tests: appends JSON records
 * `{ id, seq }` over the broker's HTTP API at a target rate (records/s),
 * in small batches every tick, until stopped. It paces itself by the
 * wall clock (a slow tick is caught up next time) and keeps going through
 * failed requests (a killed broker) by retrying the same batch later.
 */
import { BrokerHttp } from './broker-http.ts';

/** Batches per second: 1000 rec/s → 50 records per 50 ms tick. */
const TICKS_PER_SECOND = 20;

export class RateProducer {
  /** Records acknowledged by the broker. */
  acked = 0;
  /** Failed requests (retried). */
  failures = 0;
  private stopped = false;
  private readonly done: Promise<void>;

  /**
   * @example const producer = new RateProducer(new BrokerHttp(url), 'orders', 1000); ...; await producer.stop();
   */
  constructor(private readonly http: BrokerHttp, private readonly topic: string, private readonly recordsPerSecond: number, private readonly idPrefix = 'n') {
    this.done = this.run();
  }

  /** Stops after the batch in flight; resolves with the number of records acknowledged. */
  async stop(): Promise<number> {
    this.stopped = true;
    await this.done;
    return this.acked;
  }

  private async run(): Promise<void> {
    const startedAt = Date.now();
    let seq = 0;
    while (!this.stopped) {
      const due = Math.floor(((Date.now() - startedAt) / 1000) * this.recordsPerSecond);
      const count = Math.min(due - seq, Math.ceil((this.recordsPerSecond / TICKS_PER_SECOND) * 4));
      if (count > 0) {
        const records = Array.from({ length: count }, (_, i) => ({ value: { id: `${this.idPrefix}${seq + i}`, seq: seq + i } }));
        try {
          await this.http.produce(this.topic, records);
          seq += count;
          this.acked += count;
        } catch {
          this.failures++;
        }
      }
      // NB: unref'd, so a producer left running by a timed-out test cannot keep the process alive.
      await new Promise((resolve) => setTimeout(resolve, 1000 / TICKS_PER_SECOND).unref());
    }
  }
}
