/**
 * This broker's copy of the cluster metadata in etcd (sans-IO): fed a full
 * snapshot (`replace`, after start and after every watch reconnect) and then
 * watch events in revision order (`apply`); answers the cached getters and
 * says what changed.
 *
 * Ordering contract of the returned notices: in revision order; for one etcd
 * revision (a transaction), a `topics` notice precedes the leadership
 * notices of that revision, then `brokers`, then `controller`. A `replace`
 * returns exactly the differences from the previous state, so a listener
 * that applies notices sees the same state as one that reloads everything.
 */
import type { TopicInfo } from '../metadata/topic-info.ts';
import type { BrokerEndpoint, VersionedLeadership } from './cluster-state.ts';
import { decodeBroker, decodeLeadership, decodeTopic, parseKey } from './cluster-keys.ts';

/** One key as etcd reports it; `key` relative to the cluster prefix. */
export interface KeyEvent {
  type: 'put' | 'delete';
  key: string;
  /** Empty for a delete. */
  value: string;
  /** Decimal etcd revisions. For a delete, `modRevision` is the deletion's revision. */
  modRevision: string;
  createRevision: string;
}

export type CacheNotice =
  | { type: 'topics' }
  | { type: 'leadership'; leadership: VersionedLeadership }
  | { type: 'leadership-removed'; topicId: string; partition: number }
  | { type: 'brokers' }
  /** The elected campaign changed (possibly to a new campaign of the same broker). */
  | { type: 'controller'; controller: number | null };

export interface CacheUpdate {
  notices: CacheNotice[];
  /** Keys whose value did not decode (treated as absent). */
  problems: { key: string; problem: string }[];
}

interface Candidate { key: string; createRevision: bigint; brokerId: number | null }

/** One campaign in the controller election (etcd3's election layout: `election/controller/<lease id>`). */
export interface ElectionCandidate {
  /** Relative key. */
  key: string;
  createRevision: string;
  brokerId: number | null;
}

const byName = (a: TopicInfo, b: TopicInfo) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
const partitionKey = (topicId: string, partition: number) => `${topicId}/${partition}`;

export class ClusterCache {
  private topicMap = new Map<string, TopicInfo>();
  private leadershipMap = new Map<string, VersionedLeadership>();
  private brokerMap = new Map<number, BrokerEndpoint>();
  private candidateMap = new Map<string, Candidate>();
  private currentController: number | null = null;
  private electedKey: string | null = null;
  private currentRevision = '0';

  /** etcd revision the cache reflects. */
  get revision(): string {
    return this.currentRevision;
  }

  topics(): TopicInfo[] {
    return [...this.topicMap.values()].sort(byName);
  }

  topic(name: string): TopicInfo | undefined {
    return this.topicMap.get(name);
  }

  leadership(topicId: string, partition: number): VersionedLeadership | undefined {
    return this.leadershipMap.get(partitionKey(topicId, partition));
  }

  leaderships(): VersionedLeadership[] {
    return [...this.leadershipMap.values()];
  }

  brokers(): BrokerEndpoint[] {
    return [...this.brokerMap.values()].sort((a, b) => a.id - b.id);
  }

  broker(id: number): BrokerEndpoint | undefined {
    return this.brokerMap.get(id);
  }

  /** The elected controller's broker id (the election key with the lowest create revision), null if none. */
  controller(): number | null {
    return this.currentController;
  }

  /** Every campaign, elected first (lowest create revision). */
  candidates(): ElectionCandidate[] {
    return [...this.candidateMap.values()]
      .sort((a, b) => (a.createRevision < b.createRevision ? -1 : a.createRevision > b.createRevision ? 1 : 0))
      .map((c) => ({ key: c.key, createRevision: c.createRevision.toString(), brokerId: c.brokerId }));
  }

  /** Replaces everything with a snapshot (all keys as of `revision`) and returns the differences. */
  replace(puts: readonly KeyEvent[], revision: string): CacheUpdate {
    const before = { topics: this.topicMap, leaderships: this.leadershipMap, brokers: this.brokerMap, electedKey: this.electedKey };
    this.topicMap = new Map();
    this.leadershipMap = new Map();
    this.brokerMap = new Map();
    this.candidateMap = new Map();
    const problems: CacheUpdate['problems'] = [];
    for (const event of puts) this.store(event, problems);
    this.updateElected();
    this.currentRevision = revision;
    const notices: CacheNotice[] = [];
    if (!sameTopics(before.topics, this.topicMap)) notices.push({ type: 'topics' });
    for (const [key, old] of before.leaderships) {
      if (!this.leadershipMap.has(key)) notices.push({ type: 'leadership-removed', topicId: old.topicId, partition: old.partition });
    }
    for (const [key, now] of this.leadershipMap) {
      if (before.leaderships.get(key)?.revision !== now.revision) notices.push({ type: 'leadership', leadership: now });
    }
    if (!sameBrokers(before.brokers, this.brokerMap)) notices.push({ type: 'brokers' });
    if (before.electedKey !== this.electedKey) notices.push({ type: 'controller', controller: this.currentController });
    return { notices, problems };
  }

  /** Applies one watch response (events in revision order, all above the cache's revision). */
  apply(events: readonly KeyEvent[], revision: string): CacheUpdate {
    const problems: CacheUpdate['problems'] = [];
    const notices: CacheNotice[] = [];
    let topicsChanged = false;
    let brokersChanged = false;
    const flush = () => {
      if (topicsChanged) notices.push({ type: 'topics' });
      notices.push(...leadershipNotices.splice(0));
      if (brokersChanged) notices.push({ type: 'brokers' });
      if (this.updateElected()) notices.push({ type: 'controller', controller: this.currentController });
      topicsChanged = brokersChanged = false;
    };
    const leadershipNotices: CacheNotice[] = [];
    let lastRevision: string | undefined;
    for (const event of events) {
      if (lastRevision !== undefined && event.modRevision !== lastRevision) flush();
      lastRevision = event.modRevision;
      const parsed = parseKey(event.key);
      if (event.type === 'delete') {
        switch (parsed.kind) {
          case 'topic': topicsChanged = this.topicMap.delete(parsed.name) || topicsChanged; break;
          case 'partition':
            if (this.leadershipMap.delete(partitionKey(parsed.topicId, parsed.partition))) leadershipNotices.push({ type: 'leadership-removed', topicId: parsed.topicId, partition: parsed.partition });
            break;
          case 'broker': brokersChanged = this.brokerMap.delete(parsed.id) || brokersChanged; break;
          case 'controller-candidate': this.candidateMap.delete(parsed.lease); break;
          case 'other': break;
        }
        continue;
      }
      const stored = this.store(event, problems);
      if (stored === 'topic') topicsChanged = true;
      if (stored === 'broker') brokersChanged = true;
      if (parsed.kind === 'partition' && stored === 'partition') {
        leadershipNotices.push({ type: 'leadership', leadership: this.leadershipMap.get(partitionKey(parsed.topicId, parsed.partition))! });
      }
      if (parsed.kind === 'partition' && stored === 'partition-removed') {
        leadershipNotices.push({ type: 'leadership-removed', topicId: parsed.topicId, partition: parsed.partition });
      }
    }
    flush();
    this.currentRevision = revision;
    return { notices, problems };
  }

  /** Stores one put; returns what kind of key changed (an undecodable value removes the key: undefined when it was absent anyway). */
  private store(event: KeyEvent, problems: CacheUpdate['problems']): 'topic' | 'partition' | 'partition-removed' | 'broker' | 'controller' | undefined {
    const parsed = parseKey(event.key);
    switch (parsed.kind) {
      case 'topic': {
        const decoded = decodeTopic(event.value);
        if (!decoded.ok || decoded.value.name !== parsed.name) {
          problems.push({ key: event.key, problem: decoded.ok ? `names topic ${decoded.value.name}` : decoded.problem });
          return this.topicMap.delete(parsed.name) ? 'topic' : undefined;
        }
        this.topicMap.set(parsed.name, decoded.value);
        return 'topic';
      }
      case 'partition': {
        const decoded = decodeLeadership(event.value);
        if (!decoded.ok) {
          problems.push({ key: event.key, problem: decoded.problem });
          return this.leadershipMap.delete(partitionKey(parsed.topicId, parsed.partition)) ? 'partition-removed' : undefined;
        }
        this.leadershipMap.set(partitionKey(parsed.topicId, parsed.partition), {
          ...decoded.value, topicId: parsed.topicId, partition: parsed.partition, revision: event.modRevision,
        });
        return 'partition';
      }
      case 'broker': {
        const decoded = decodeBroker(event.value);
        if (!decoded.ok || decoded.value.id !== parsed.id) {
          problems.push({ key: event.key, problem: decoded.ok ? `names broker ${decoded.value.id}` : decoded.problem });
          return this.brokerMap.delete(parsed.id) ? 'broker' : undefined;
        }
        this.brokerMap.set(parsed.id, decoded.value);
        return 'broker';
      }
      case 'controller-candidate': {
        const id = Number(event.value);
        this.candidateMap.set(parsed.lease, { key: event.key, createRevision: BigInt(event.createRevision), brokerId: Number.isInteger(id) && id >= 0 ? id : null });
        return 'controller';
      }
      case 'other':
        return undefined;
    }
  }

  /** Recomputes the elected campaign; true when it changed (a new campaign won, even of the same broker). */
  private updateElected(): boolean {
    let first: Candidate | undefined;
    for (const c of this.candidateMap.values()) if (!first || c.createRevision < first.createRevision) first = c;
    const key = first?.key ?? null;
    this.currentController = first?.brokerId ?? null;
    if (key === this.electedKey) return false;
    this.electedKey = key;
    return true;
  }
}

function sameTopics(a: Map<string, TopicInfo>, b: Map<string, TopicInfo>): boolean {
  if (a.size !== b.size) return false;
  for (const [name, info] of a) if (JSON.stringify(b.get(name)) !== JSON.stringify(info)) return false;
  return true;
}

function sameBrokers(a: Map<number, BrokerEndpoint>, b: Map<number, BrokerEndpoint>): boolean {
  if (a.size !== b.size) return false;
  for (const [id, broker] of a) if (JSON.stringify(b.get(id)) !== JSON.stringify(broker)) return false;
  return true;
}
