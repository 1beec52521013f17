/**
 * Partition assignment for consumer groups (pure): Kafka's `range` and
 * `roundrobin` assignors over the partitions of the topics each member
 * subscribes to.
 *
 * Invariant (checked by property tests): every partition of a subscribed
 * topic goes to exactly one member that subscribes to that topic, and no
 * partition goes to two members. Output is deterministic for a given input
 * (members and topics sorted), so a restart or a replay yields the same plan.
 */

export type AssignmentStrategy = 'range' | 'roundrobin';

export interface AssignorMember {
  memberId: string;
  topics: readonly string[];
}

/** memberId → topic → sorted partitions. Every member is present (possibly empty). */
export type Assignment = Map<string, Map<string, number[]>>;

/**
 * Assigns the partitions of every topic that at least one member wants.
 * `partitionCounts` lacks a topic (unknown/deleted) → that topic is skipped.
 */
export function assignPartitions(
  strategy: AssignmentStrategy,
  members: readonly AssignorMember[],
  partitionCounts: ReadonlyMap<string, number>,
): Assignment {
  const sorted = [...members].sort((a, b) => (a.memberId < b.memberId ? -1 : a.memberId > b.memberId ? 1 : 0));
  const out: Assignment = new Map(sorted.map((m) => [m.memberId, new Map<string, number[]>()]));
  const topics = [...new Set(sorted.flatMap((m) => m.topics))].filter((t) => partitionCounts.has(t)).sort();
  if (strategy === 'range') assignRange(sorted, topics, partitionCounts, out);
  else assignRoundRobin(sorted, topics, partitionCounts, out);
  return out;
}

function give(out: Assignment, memberId: string, topic: string, partition: number): void {
  const byTopic = out.get(memberId) as Map<string, number[]>;
  const list = byTopic.get(topic);
  if (list) list.push(partition);
  else byTopic.set(topic, [partition]);
}

/** Per topic: members wanting it get contiguous ranges; the first `n % m` get one extra (Kafka RangeAssignor). */
function assignRange(members: AssignorMember[], topics: string[], counts: ReadonlyMap<string, number>, out: Assignment): void {
  for (const topic of topics) {
    const wanting = members.filter((m) => m.topics.includes(topic));
    const n = counts.get(topic) as number;
    const per = Math.floor(n / wanting.length);
    const extra = n % wanting.length;
    let next = 0;
    wanting.forEach((m, i) => {
      const take = per + (i < extra ? 1 : 0);
      for (let k = 0; k < take; k++) give(out, m.memberId, topic, next++);
    });
  }
}

/** All topic-partitions in order, dealt in turn to the next member that subscribes to the topic. */
function assignRoundRobin(members: AssignorMember[], topics: string[], counts: ReadonlyMap<string, number>, out: Assignment): void {
  let cursor = 0;
  for (const topic of topics) {
    const n = counts.get(topic) as number;
    for (let p = 0; p < n; p++) {
      for (let tries = 0; tries < members.length; tries++) {
        const m = members[(cursor + tries) % members.length];
        if (!m.topics.includes(topic)) continue;
        give(out, m.memberId, topic, p);
        cursor = (cursor + tries + 1) % members.length;
        break;
      }
    }
  }
}
