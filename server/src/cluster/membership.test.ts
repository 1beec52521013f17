import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Etcd3 } from 'etcd3';
import type { BrokerEndpoint } from './cluster-state.ts';
import { EtcdConnection } from './etcd-connection.ts';
import { EtcdProcess } from './etcd-process.ts';
import { BrokerMembership, revokeBrokerLease, type MembershipEvents } from './membership.ts';

let etcd: EtcdProcess;
let raw: Etcd3;
const connections: EtcdConnection[] = [];

before(async () => {
  etcd = await EtcdProcess.start();
  raw = new Etcd3({ hosts: etcd.url });
});

after(async () => {
  for (const c of connections) c.close();
  raw.close();
  await etcd.dispose();
});

function connect(prefix: string): EtcdConnection {
  const c = new EtcdConnection({ endpoints: [etcd.url], prefix, limits: { etcdRequestTimeoutMs: 2000 } });
  connections.push(c);
  return c;
}

const freshPrefix = () => `/m-${randomBytes(6).toString('hex')}`;
const endpoint = (id: number, port = 9000 + id): Omit<BrokerEndpoint, 'leaseId'> => ({
  id, clientUrl: `http://127.0.0.1:${port}`, replicationHost: '127.0.0.1', replicationPort: port + 500, startedAtMs: Date.now(),
});
const FAST = { brokerLeaseTtlMs: 1000, registrationWaitMs: 500, registrationRetryMs: 50 };

async function stored(prefix: string, id: number): Promise<BrokerEndpoint | undefined> {
  const text = await raw.get(`${prefix}/brokers/${id}`).string();
  return text === null ? undefined : (JSON.parse(text) as BrokerEndpoint);
}

/** Records events; `next(name)` resolves on the next one of that name. */
function recorder() {
  const log: string[] = [];
  const waiters: { name: string; resolve: () => void }[] = [];
  const record = (name: string) => {
    log.push(name);
    for (const w of waiters.splice(0)) if (w.name === name) w.resolve(); else waiters.push(w);
  };
  const events: MembershipEvents = {
    registered: (e) => record(`registered ${e.leaseId}`.split(' ')[0]),
    leaseLost: () => record('leaseLost'),
    failed: (e) => record(`failed ${e.errorName}`),
  };
  const next = (name: string) => new Promise<void>((resolve) => waiters.push({ name, resolve }));
  return { log, events, next };
}

test('membership: registers under a lease, deregisters on close', { timeout: 30_000 }, async () => {
  const prefix = freshPrefix();
  const membership = await BrokerMembership.register(connect(prefix), endpoint(1), { limits: FAST });
  const registered = await stored(prefix, 1);
  assert.deepEqual(registered, membership.endpoint);
  assert.match(membership.endpoint.leaseId, /^[0-9]+$/);
  const lease = await raw.get(`${prefix}/brokers/1`).exec();
  assert.equal(lease.kvs[0].lease, membership.endpoint.leaseId, 'the key is attached to the lease it names');
  await membership.close();
  assert.equal(await stored(prefix, 1), undefined);
});

test('membership: a second live process with the same id is refused with BROKER_ID_IN_USE', { timeout: 30_000 }, async () => {
  const prefix = freshPrefix();
  const first = await BrokerMembership.register(connect(prefix), endpoint(1), { limits: FAST });
  await assert.rejects(BrokerMembership.register(connect(prefix), endpoint(1, 9100), { limits: FAST }), { errorName: 'BROKER_ID_IN_USE' } as object);
  assert.deepEqual(await stored(prefix, 1), first.endpoint, 'the first registration is untouched');
  const other = await BrokerMembership.register(connect(prefix), endpoint(2), { limits: FAST });
  assert.equal((await stored(prefix, 2))?.id, 2);
  await Promise.all([first.close(), other.close()]);
});

test('membership: a broker restarted before its crashed predecessor\'s lease expired starts once it does', { timeout: 30_000 }, async () => {
  const prefix = freshPrefix();
  const crashed = connect(prefix);
  const old = await BrokerMembership.register(crashed, endpoint(1), { limits: FAST });
  crashed.close(); // the process died: no revoke, the lease runs out
  const restarted = await BrokerMembership.register(connect(prefix), endpoint(1, 9100), { limits: { ...FAST, registrationWaitMs: 10_000 } });
  assert.notEqual(restarted.endpoint.leaseId, old.endpoint.leaseId);
  assert.equal((await stored(prefix, 1))?.clientUrl, 'http://127.0.0.1:9100');
  await restarted.close();
});

test('membership: a lease revoked by the controller is replaced by a new registration, and the owner is told', { timeout: 30_000 }, async () => {
  const prefix = freshPrefix();
  const events = recorder();
  const membership = await BrokerMembership.register(connect(prefix), endpoint(1), { limits: FAST, events: events.events });
  const firstLease = membership.endpoint.leaseId;
  const reRegistered = events.next('registered');
  await revokeBrokerLease(connect(prefix), firstLease);
  await reRegistered;
  assert.deepEqual(events.log, ['registered', 'leaseLost', 'registered']);
  assert.notEqual(membership.endpoint.leaseId, firstLease);
  assert.deepEqual(await stored(prefix, 1), membership.endpoint);
  await revokeBrokerLease(connect(prefix), firstLease); // already gone: not an error
  await membership.close();
});

test('membership: a lease that expired while the process was paused is re-made after it resumes', { timeout: 30_000 }, async () => {
  const prefix = freshPrefix();
  const events = recorder();
  const membership = await BrokerMembership.register(connect(prefix), endpoint(1), { limits: FAST, events: events.events });
  const firstLease = membership.endpoint.leaseId;
  const reRegistered = events.next('registered');
  // A paused process: no keep-alive runs while the event loop is blocked (as under SIGSTOP or a long GC pause).
  const until = Date.now() + 3000;
  while (Date.now() < until) { /* paused */ }
  await reRegistered;
  assert.deepEqual(events.log, ['registered', 'leaseLost', 'registered']);
  assert.notEqual(membership.endpoint.leaseId, firstLease);
  assert.deepEqual(await stored(prefix, 1), membership.endpoint);
  await membership.close();
});

test('membership: if another process took the id while the lease was lost, the owner is told BROKER_ID_IN_USE', { timeout: 30_000 }, async () => {
  const prefix = freshPrefix();
  const events = recorder();
  const membership = await BrokerMembership.register(connect(prefix), endpoint(1), { limits: FAST, events: events.events });
  const failed = events.next('failed BROKER_ID_IN_USE');
  // Revoke and take the id in one go, before the owner can re-register.
  const thief = new Etcd3({ hosts: etcd.url });
  try {
    const lease = thief.lease(5);
    const id = await lease.grant();
    await thief.if(`${prefix}/brokers/1`, 'Create', '>', 0)
      .then(thief.put(`${prefix}/brokers/1`).value(JSON.stringify({ ...endpoint(1, 9200), leaseId: id })).lease(id))
      .commit();
    await revokeBrokerLease(connect(prefix), membership.endpoint.leaseId).catch(() => undefined);
    await failed;
    assert.equal((await stored(prefix, 1))?.clientUrl, 'http://127.0.0.1:9200');
    assert.equal(membership.isRegistered, false);
    await membership.close();
    await lease.revoke();
  } finally {
    thief.close();
  }
});
