/**
 * Authorization: may this principal perform this operation on this
 * resource? A pure function of the principal's compiled grants; the request
 * layer calls it once per operation (not per record) and turns a refusal
 * into the coded error on the wire.
 *
 * Which grant covers which operation (docs/security.md, "Grants"):
 *
 * | operation       | resource            | needs                                              | refusal code                   |
 * |-----------------|---------------------|----------------------------------------------------|--------------------------------|
 * | produce         | topic               | publish ∋ topic                                    | TOPIC_AUTHORIZATION_FAILED     |
 * | fetch           | topic               | subscribe ∋ topic                                  | TOPIC_AUTHORIZATION_FAILED     |
 * | subscribe       | topic               | subscribe ∋ topic                                  | TOPIC_AUTHORIZATION_FAILED     |
 * | describe        | topic               | publish ∋ topic or subscribe ∋ topic               | TOPIC_AUTHORIZATION_FAILED     |
 * | describe        | cluster             | any authenticated principal                        | —                              |
 * | createTopic     | topic               | admin                                              | TOPIC_AUTHORIZATION_FAILED     |
 * | deleteTopic     | topic               | admin                                              | TOPIC_AUTHORIZATION_FAILED     |
 * | groupJoin       | group               | group ∋ group                                      | GROUP_AUTHORIZATION_FAILED     |
 * | groupCommit     | group (+ topic)     | group ∋ group, then (with a topic) subscribe ∋ topic | GROUP_…, then TOPIC_…        |
 * | groupFetch      | group (+ topic)     | group ∋ group, then (with a topic) describe topic  | GROUP_…, then TOPIC_…          |
 * | groupDescribe   | group               | group ∋ group                                      | GROUP_AUTHORIZATION_FAILED     |
 * | initProducer    | cluster             | a non-empty publish grant (KIP-679)                | CLUSTER_AUTHORIZATION_FAILED   |
 * | admin           | cluster             | admin                                              | CLUSTER_AUTHORIZATION_FAILED   |
 *
 * `admin` and the anonymous principal pass everything. A group join also
 * subscribes to the group's topics: the request layer checks `subscribe` on
 * each of them (as Kafka checks Read on topic and group). Committing offsets
 * needs subscribe on each committed topic: pass `{ group, topic }` per topic,
 * or `{ group }` once and then authorize `fetch` on each topic (what
 * server/src/request/request-layer.ts does).
 *
 * NB: codes as in Kafka (OffsetCommit answers TOPIC_AUTHORIZATION_FAILED per
 * partition once the group is allowed).
 */
import { assert, assertNever, type ErrorName } from '@runnel/client/codec';
import type { Principal } from './principal.ts';

export const Operations = [
  'produce', 'fetch', 'subscribe', 'describe', 'createTopic', 'deleteTopic',
  'groupJoin', 'groupCommit', 'groupFetch', 'groupDescribe', 'initProducer', 'admin',
] as const;
export type Operation = (typeof Operations)[number];

export interface TopicResource { readonly topic: string }
export interface GroupResource { readonly group: string; readonly topic?: string }
export interface ClusterResource { readonly cluster: true }
export type Resource = TopicResource | GroupResource | ClusterResource;

/** The resource each operation applies to; authorize() checks it at compile time. */
export interface ResourceOf {
  produce: TopicResource;
  fetch: TopicResource;
  subscribe: TopicResource;
  describe: TopicResource | ClusterResource;
  createTopic: TopicResource;
  deleteTopic: TopicResource;
  groupJoin: GroupResource;
  groupCommit: GroupResource;
  groupFetch: GroupResource;
  groupDescribe: GroupResource;
  initProducer: ClusterResource;
  admin: ClusterResource;
}

export type AuthorizationErrorName = Extract<ErrorName, 'TOPIC_AUTHORIZATION_FAILED' | 'GROUP_AUTHORIZATION_FAILED' | 'CLUSTER_AUTHORIZATION_FAILED'>;

export type AuthorizeResult = { ok: true } | { ok: false; code: AuthorizationErrorName; message: string };

const OK: AuthorizeResult = Object.freeze({ ok: true });

/**
 * @example
 * const p = principalFromClaims({ sub: 'u1', exp: 2e9, runnel: { publish: ['activity.*'], subscribe: [], group: [], admin: false } });
 * authorize(p, 'produce', { topic: 'activity.clicks' }); // { ok: true }
 * authorize(p, 'fetch', { topic: 'activity.clicks' });   // { ok: false, code: 'TOPIC_AUTHORIZATION_FAILED', ... }
 */
export function authorize<O extends Operation>(principal: Principal, operation: O, resource: ResourceOf[O]): AuthorizeResult {
  const { grants } = principal;
  if (principal.isAnonymous || grants.admin) return OK;
  const op: Operation = operation;
  const r = resource as Resource;
  switch (op) {
    case 'produce':
      return grants.publish.matches(topicOf(r, op)) ? OK : topicDenied(op, topicOf(r, op), 'a publish grant matching it');
    case 'fetch':
    case 'subscribe':
      return grants.subscribe.matches(topicOf(r, op)) ? OK : topicDenied(op, topicOf(r, op), 'a subscribe grant matching it');
    case 'describe':
      if ('cluster' in r) return OK;
      return canDescribe(principal, topicOf(r, op)) ? OK : topicDenied(op, topicOf(r, op), 'a publish or subscribe grant matching it');
    case 'createTopic':
    case 'deleteTopic':
      return topicDenied(op, topicOf(r, op), 'the admin grant');
    case 'groupJoin':
    case 'groupDescribe':
      return grants.group.matches(groupOf(r, op)) ? OK : groupDenied(op, groupOf(r, op));
    case 'groupCommit': {
      const group = groupOf(r, op);
      if (!grants.group.matches(group)) return groupDenied(op, group);
      const topic = (r as GroupResource).topic;
      return topic === undefined || grants.subscribe.matches(topic) ? OK : topicDenied(op, topic, 'a subscribe grant matching it');
    }
    case 'groupFetch': {
      const group = groupOf(r, op);
      if (!grants.group.matches(group)) return groupDenied(op, group);
      const topic = (r as GroupResource).topic;
      return topic === undefined || canDescribe(principal, topic) ? OK : topicDenied(op, topic, 'a publish or subscribe grant matching it');
    }
    case 'initProducer':
      assert('cluster' in r, 'authorize(initProducer) applies to { cluster: true }');
      return grants.publish.isEmpty
        ? { ok: false, code: 'CLUSTER_AUTHORIZATION_FAILED', message: 'not authorized to initProducer: needs a publish grant (on any topic)' }
        : OK;
    case 'admin':
      assert('cluster' in r, 'authorize(admin) applies to { cluster: true }');
      return { ok: false, code: 'CLUSTER_AUTHORIZATION_FAILED', message: 'not authorized for cluster administration: the token has no admin grant' };
    default:
      return assertNever(op, 'operation');
  }
}

function canDescribe(principal: Principal, topic: string): boolean {
  return principal.grants.publish.matches(topic) || principal.grants.subscribe.matches(topic);
}

function topicOf(resource: Resource, operation: Operation): string {
  assert('topic' in resource && typeof resource.topic === 'string' && !('group' in resource), `authorize(${operation}) applies to { topic }`);
  return resource.topic;
}

function groupOf(resource: Resource, operation: Operation): string {
  assert('group' in resource && typeof resource.group === 'string', `authorize(${operation}) applies to { group }`);
  return resource.group;
}

/** Names shown in messages are capped: they come from the client. */
const MAX_NAME_IN_MESSAGE = 120;

function shown(name: string): string {
  return JSON.stringify(name.length > MAX_NAME_IN_MESSAGE ? `${name.slice(0, MAX_NAME_IN_MESSAGE)}…` : name);
}

function topicDenied(operation: Operation, topic: string, needs: string): AuthorizeResult {
  return { ok: false, code: 'TOPIC_AUTHORIZATION_FAILED', message: `not authorized to ${operation} topic ${shown(topic)}: needs ${needs}` };
}

function groupDenied(operation: Operation, group: string): AuthorizeResult {
  return { ok: false, code: 'GROUP_AUTHORIZATION_FAILED', message: `not authorized to ${operation} group ${shown(group)}: needs a group grant matching it` };
}
