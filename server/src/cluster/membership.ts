/**
 * Broker membership (docs/cluster.md "Roles"): `brokers/<id>` holds this
 * broker's `BrokerEndpoint`, attached to an etcd lease of
 * `brokerLeaseTtlMs` kept alive at a third of it (etcd3's Lease).
 *
 * Invariants:
 * - one live registration per broker id: the key is only created if absent
 *   (txn on create revision 0); a registration under another live lease
 *   refuses the start with BROKER_ID_IN_USE (after `registrationWaitMs`,
 *   so a broker restarted faster than its old lease expires still starts);
 * - a lost registration (the lease expired while this process was paused or
 *   cut off, or the controller revoked it) is re-made under a new lease, and
 *   the owner is told (`leaseLost`, then `registered` with the new lease
 *   id): its ISR memberships may be gone, and it must not assume otherwise.
 */
import { EtcdLeaseInvalidError, type Lease } from 'etcd3';
import { RunnelError } from '@runnel/client/codec';
import type { BrokerEndpoint } from './cluster-state.ts';
import { ClusterKeys, decodeBroker } from './cluster-keys.ts';
import type { EtcdConnection } from './etcd-connection.ts';

export interface MembershipLimits {
  /** Lease TTL (etcd rounds up to whole seconds, at least its minimum TTL). Too short: a GC pause or slow disk costs the broker its leaderships; too long: a dead broker is noticed late (when the liveness probe does not catch it). */
  brokerLeaseTtlMs: number;
  /** How long a start waits for another lease's registration of the same id to go away before BROKER_ID_IN_USE. */
  registrationWaitMs: number;
  /** Poll interval while waiting, and retry delay while re-registering against an unreachable etcd. */
  registrationRetryMs: number;
}

export const defaultMembershipLimits: MembershipLimits = {
  brokerLeaseTtlMs: 6_000,
  registrationWaitMs: 8_000,
  registrationRetryMs: 250,
};

export function validateMembershipLimits(limits: MembershipLimits): void {
  for (const [name, value] of Object.entries(limits)) {
    if (!Number.isInteger(value) || value <= 0) throw new RangeError(`membership limit ${name} must be a positive integer, got ${value}`);
  }
  if (limits.brokerLeaseTtlMs < 1000) throw new RangeError('brokerLeaseTtlMs must be at least 1000 (etcd leases are whole seconds)');
}

/** etcd lease TTL in seconds for a TTL in ms. */
export function leaseTtlSeconds(ttlMs: number): number {
  return Math.max(1, Math.ceil(ttlMs / 1000));
}

export interface MembershipEvents {
  /** Registered (at start and after every re-registration) under `endpoint.leaseId`. */
  registered?(endpoint: BrokerEndpoint): void;
  /** The registration is gone (expired or revoked); re-registering now. */
  leaseLost?(reason: string): void;
  /** Re-registration is impossible (another process took this id: BROKER_ID_IN_USE): the broker must stop. */
  failed?(error: RunnelError): void;
}

export interface MembershipOptions {
  limits?: Partial<MembershipLimits>;
  events?: MembershipEvents;
}

type Attempt = { ok: true; lease: Lease; leaseId: string } | { ok: false; holder: BrokerEndpoint | undefined };

export class BrokerMembership {
  private readonly limits: MembershipLimits;
  private lease: Lease | undefined;
  private current: BrokerEndpoint | undefined;
  /** Lease ids this process held: a registration under one of them is ours (a loss etcd had not yet applied) and may be replaced. */
  private readonly ownLeaseIds = new Set<string>();
  private isClosed = false;
  private reregistering: Promise<void> | undefined;
  private unwatchKey: (() => void) | undefined;
  /** Each lease's connection-close hook, removed when the lease ends. */
  private readonly leaseHooks = new WeakMap<Lease, () => void>();

  private constructor(
    private readonly connection: EtcdConnection,
    private readonly endpointBase: Omit<BrokerEndpoint, 'leaseId'>,
    private readonly events: MembershipEvents,
    limits: Partial<MembershipLimits> | undefined,
  ) {
    this.limits = { ...defaultMembershipLimits, ...limits };
    validateMembershipLimits(this.limits);
  }

  /**
   * Registers the broker. BROKER_ID_IN_USE when another live process holds
   * the id; CLUSTER_UNAVAILABLE when etcd cannot be reached.
   * @example
   * const membership = await BrokerMembership.register(connection, { id: 1, clientUrl, replicationHost, replicationPort, startedAtMs: Date.now() });
   */
  static async register(connection: EtcdConnection, endpoint: Omit<BrokerEndpoint, 'leaseId'>, options: MembershipOptions = {}): Promise<BrokerMembership> {
    const membership = new BrokerMembership(connection, endpoint, options.events ?? {}, options.limits);
    const deadline = Date.now() + membership.limits.registrationWaitMs;
    for (;;) {
      const attempt = await membership.attempt();
      if (attempt.ok) {
        membership.become(attempt.lease, attempt.leaseId);
        return membership;
      }
      if (Date.now() >= deadline) {
        throw new RunnelError('BROKER_ID_IN_USE', `broker id ${endpoint.id} is registered by another live process (${attempt.holder?.clientUrl ?? 'unknown'}, lease ${attempt.holder?.leaseId ?? '?'}, started ${attempt.holder ? new Date(attempt.holder.startedAtMs).toISOString() : '?'}): give this broker another --node-id`);
      }
      await delay(membership.limits.registrationRetryMs);
    }
  }

  /** The registration as last made (its lease id changes after a re-registration). */
  get endpoint(): BrokerEndpoint {
    return this.current!;
  }

  /** Whether the registration is believed live (false between a loss and the re-registration). */
  get isRegistered(): boolean {
    return this.lease !== undefined;
  }

  /** Deregisters (revokes the lease: the key goes at once) and stops. Idempotent. */
  async close(): Promise<void> {
    if (this.isClosed) return;
    this.isClosed = true;
    this.unwatchKey?.();
    const lease = this.lease;
    this.lease = undefined;
    if (lease) this.leaseHooks.get(lease)?.();
    if (lease && !this.connection.closed) {
      await this.connection.run('deregister broker', () => lease.revoke()).catch(() => lease.release());
    }
    await this.reregistering;
  }

  /** One registration attempt: a new lease and a create-if-absent of the key under it. */
  private async attempt(depth = 0): Promise<Attempt> {
    const client = this.connection.client;
    const key = this.connection.key(ClusterKeys.broker(this.endpointBase.id));
    const lease = client.lease(leaseTtlSeconds(this.limits.brokerLeaseTtlMs));
    lease.on('lost', () => undefined); // handled through become(); an unheard 'lost' must not be an unhandled error
    const unhook = this.connection.onClose(() => lease.release());
    this.leaseHooks.set(lease, unhook);
    lease.once('lost', unhook);
    try {
      const leaseId = await this.connection.run('grant broker lease', () => lease.grant());
      this.ownLeaseIds.add(leaseId);
      const value = JSON.stringify({ ...this.endpointBase, leaseId } satisfies BrokerEndpoint);
      const result = await this.connection.run('register broker', () =>
        client.if(key, 'Create', '==', 0).then(client.put(key).value(value).lease(leaseId)).else(client.get(key)).commit());
      if (result.succeeded) return { ok: true, lease, leaseId };
      unhook();
      await this.connection.run('release broker lease', () => lease.revoke()).catch(() => lease.release());
      const kv = result.responses[0]?.response_range?.kvs[0];
      const decoded = kv ? decodeBroker(kv.value.toString()) : undefined;
      const holder = decoded?.ok ? decoded.value : undefined;
      if (kv && depth < 3 && (holder === undefined || this.ownLeaseIds.has(holder.leaseId))) {
        // Our own earlier registration (etcd had not yet expired it), or an undecodable value: replace it.
        const heldBy = kv.lease;
        await this.connection.run('replace own registration', async () => {
          await client.if(key, 'Mod', '==', kv.mod_revision).then(client.delete().key(key)).commit();
          if (heldBy && heldBy !== '0') await revokeBrokerLease(this.connection, heldBy);
        });
        return this.attempt(depth + 1);
      }
      return { ok: false, holder };
    } catch (e) {
      unhook();
      lease.release();
      throw e;
    }
  }

  private become(lease: Lease, leaseId: string): void {
    this.lease = lease;
    this.current = { ...this.endpointBase, leaseId };
    lease.removeAllListeners('lost');
    lease.on('lost', (err) => this.handleLoss(lease, `lease ${leaseId} lost: ${err.message}`));
    this.watchOwnKey(lease, leaseId);
    this.events.registered?.(this.current);
  }

  /** A revoked lease shows at the next keep-alive (TTL/3); the key's delete (or a put under another lease) shows it at once. */
  private watchOwnKey(lease: Lease, leaseId: string): void {
    this.unwatchKey?.();
    const key = this.connection.key(ClusterKeys.broker(this.endpointBase.id));
    const watcher = this.connection.client.watch().key(key).watcher();
    watcher.on('delete', () => this.handleLoss(lease, `registration ${key} (lease ${leaseId}) was deleted`));
    watcher.on('put', (kv) => {
      if (kv.lease !== leaseId) this.handleLoss(lease, `registration ${key} was overwritten under lease ${kv.lease}`);
    });
    watcher.on('error', () => undefined); // the keep-alive still detects a loss
    const unhook = this.connection.onClose(() => this.unwatchKey?.());
    this.unwatchKey = () => {
      unhook();
      this.unwatchKey = undefined;
      watcher.removeAllListeners().on('error', () => undefined);
      watcher.cancel().catch(() => undefined);
    };
  }

  private handleLoss(lease: Lease, reason: string): void {
    if (this.isClosed || this.lease !== lease) return; // an old lease, already replaced
    this.lease = undefined;
    this.unwatchKey?.();
    this.leaseHooks.get(lease)?.();
    lease.release();
    this.events.leaseLost?.(reason);
    this.reregistering = this.reregister();
  }

  private async reregister(): Promise<void> {
    while (!this.isClosed && !this.connection.closed) {
      try {
        const attempt = await this.attempt();
        if (this.isClosed) {
          if (attempt.ok) await this.connection.run('deregister broker', () => attempt.lease.revoke()).catch(() => attempt.lease.release());
          return;
        }
        if (attempt.ok) {
          this.become(attempt.lease, attempt.leaseId);
          return;
        }
        this.events.failed?.(new RunnelError('BROKER_ID_IN_USE', `broker id ${this.endpointBase.id} was taken by another process (${attempt.holder?.clientUrl ?? 'unknown'}) while this broker's lease was lost`));
        return;
      } catch {
        await delay(this.limits.registrationRetryMs); // etcd unreachable: keep trying
      }
    }
  }
}

/** The controller's fast path for a broker it saw die: revoke its lease, so its registration goes now instead of at the TTL. */
export async function revokeBrokerLease(connection: EtcdConnection, leaseId: string): Promise<void> {
  await connection.run(`revoke lease ${leaseId}`, async () => {
    try {
      await connection.client.leaseClient.leaseRevoke({ ID: leaseId });
    } catch (e) {
      if (e instanceof EtcdLeaseInvalidError) return; // already gone
      throw e;
    }
  });
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
