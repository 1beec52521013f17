/**
 * The messages of leader-tab mode on the origin's BroadcastChannel. Every tab sees every message; `to` names the tab one is for and the
 * others ignore it. Ordering: a tab's messages reach each other tab in the
 * order they were posted (BroadcastChannel guarantees it per sender), so a
 * `register` reaches the leader before the calls that follow it.
 */
import type { ConnectionState, ConsumerRecord } from '@runnel/client';
import type { RemoteError } from './remote-error.ts';

/**
 * Header naming one send of a follower tab (`<tabId>:<n>`), so that the send can be made again at the next
 * leader when the one it went to closed before answering: a host does not queue again a send whose id is in
 * the outbox it loaded at start (worker-api.ts); its ack then resolves once that outbox has drained, with
 * partition and offset -1 (unknown to the new leader). Consumers see the header like any other.
 */
export const SEND_ID_HEADER = 'runnel-send-id';

/** Methods a tab may call on the leader's host (everything else is refused INVALID_REQUEST). */
export type TabMethod = 'register' | 'unregister' | 'send' | 'ack' | 'subscribe' | 'unsubscribe' | 'state' | 'onStateChange' | 'outboxSize' | 'flush' | 'drained';

export type TabMessage =
  /** A tab that has just opened asks who leads; the leader answers with `leader`. */
  | { t: 'hello'; from: string }
  /** The leader announces itself once its host is ready (and answers each `hello`). */
  | { t: 'leader'; from: string }
  /** The leader's page is going (`pagehide`): hold calls for the next leader rather than post them to a page that will not answer. */
  | { t: 'leaving'; from: string }
  /** `subscribe` args are `[tabId, topic, subscription, options]`: deliveries come back as `deliver` naming `subscription`. */
  | { t: 'call'; to: string; from: string; id: number; method: TabMethod; args: unknown[] }
  /** The method's value (`ok`), or what it threw (`error`). */
  | { t: 'reply'; to: string; id: number; ok?: unknown; error?: RemoteError['runnelError'] }
  /** A batch for the tab's subscription; the leader's consumer waits for `delivered` (one batch in flight per subscription). */
  | { t: 'deliver'; to: string; from: string; sub: number; n: number; records: ConsumerRecord[] }
  /** The handler finished batch `n` (`error`: it threw; the consumer treats it as a failed handler). */
  | { t: 'delivered'; to: string; from: string; n: number; error?: RemoteError['runnelError'] }
  | { t: 'state'; to: string; state: ConnectionState };
