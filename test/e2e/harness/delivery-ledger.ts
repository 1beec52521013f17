/**
 * Delivery ledger: what a consumer's handler saw, kept in the test process
 * (outside the page, so it survives reloads), and the checks the browser
 * tests assert: per partition every offset of the log exactly once and in
 * order (no gap, no duplicate), and for a producer every unique id exactly
 * once in the log (no loss, no duplicate).
 */

export interface Delivery { partition: number; offset: number }

export class DeliveryLedger {
  /** Offsets seen per partition, in arrival order. */
  private readonly seen = new Map<number, number[]>();
  count = 0;

  record(deliveries: readonly Delivery[]): void {
    for (const { partition, offset } of deliveries) {
      let list = this.seen.get(partition);
      if (!list) this.seen.set(partition, (list = []));
      list.push(offset);
    }
    this.count += deliveries.length;
  }

  /** The next offset expected on `partition` (0 when nothing was seen). */
  nextOffset(partition: number): number {
    const list = this.seen.get(partition);
    return list && list.length > 0 ? list[list.length - 1] + 1 : 0;
  }

  /** Whether every partition reached its expected end (`highWatermarks[p]`). */
  reached(highWatermarks: readonly number[]): boolean {
    return highWatermarks.every((hw, p) => this.nextOffset(p) >= hw);
  }

  /**
   * Problems against the log, as readable lines (empty = exactly once, in
   * order): partition `p` must have been seen as exactly
   * `logStartOffsets[p] .. highWatermarks[p] - 1`, in that order.
   */
  problems(highWatermarks: readonly number[], logStartOffsets: readonly number[] = highWatermarks.map(() => 0)): string[] {
    const out: string[] = [];
    for (const p of this.seen.keys()) if (p >= highWatermarks.length) out.push(`partition ${p} does not exist`);
    highWatermarks.forEach((hw, p) => {
      const list = this.seen.get(p) ?? [];
      let expected = logStartOffsets[p];
      for (let i = 0; i < list.length && out.length < 20; i++) {
        const offset = list[i];
        if (offset === expected) { expected++; continue; }
        out.push(offset < expected
          ? `partition ${p}: duplicate or out of order: offset ${offset} after ${expected - 1} (delivery #${i})`
          : `partition ${p}: gap: expected ${expected}, got ${offset} (delivery #${i})`);
        expected = Math.max(expected, offset + 1);
      }
      if (expected < hw) out.push(`partition ${p}: missing offsets ${expected}..${hw - 1}`);
      if (expected > hw) out.push(`partition ${p}: saw offsets up to ${expected - 1}, beyond the high watermark ${hw}`);
    });
    return out;
  }
}

/** Ids that appear other than exactly once among `inLog`, given the ids that were `produced`. */
export function exactlyOnceProblems(produced: readonly string[], inLog: readonly string[]): string[] {
  const counts = new Map<string, number>();
  for (const id of inLog) counts.set(id, (counts.get(id) ?? 0) + 1);
  const out: string[] = [];
  for (const id of produced) {
    const n = counts.get(id) ?? 0;
    if (n !== 1) out.push(`${id}: ${n === 0 ? 'lost' : `${n} times in the log`}`);
    counts.delete(id);
  }
  for (const id of counts.keys()) out.push(`${id}: in the log but never produced`);
  return out;
}
