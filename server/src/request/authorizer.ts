/**
 * The operations the request layer authorizes, and the `Authorizer` seam it
 * asks. Until authentication is configured every principal is anonymous and
 * the authorizer allows everything (docs/security.md).
 */
import type { ErrorName } from '@runnel/client/codec';
import type { Principal } from './request-context.ts';

export type Operation =
  | 'produce' | 'fetch' | 'subscribe' | 'describe' | 'createTopic' | 'deleteTopic'
  | 'initProducer' | 'groupJoin' | 'groupCommit' | 'groupFetch' | 'groupDescribe';

export type Resource = { topic: string } | { group: string } | { cluster: true };

export type Decision = { ok: true } | { ok: false; code: ErrorName; message: string };

export type Authorizer = (principal: Principal, operation: Operation, resource: Resource) => Decision;

export const allowAll: Authorizer = () => ({ ok: true });
