/** The etcd stream store against a real etcd: the shared contract, and two stores as two brokers would hold them. */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { EtcdConnection } from '../cluster/etcd-connection.ts';
import { EtcdProcess } from '../cluster/etcd-process.ts';
import { EtcdStreamStore } from './etcd-stream-store.ts';
import { streamMeta, streamStoreContract } from './stream-store.contract.ts';
import { withChanges, type StreamStore } from './stream-store.ts';

let etcd: EtcdProcess;
const connections: EtcdConnection[] = [];
const stores: StreamStore[] = [];

before(async () => {
  etcd = await EtcdProcess.start();
});
after(async () => {
  for (const s of stores) await s.close();
  for (const c of connections) c.close();
  await etcd.dispose();
});

async function open(prefix: string): Promise<EtcdStreamStore> {
  const connection = new EtcdConnection({ endpoints: [etcd.url], prefix });
  connections.push(connection);
  const store = await EtcdStreamStore.open(connection);
  stores.push(store);
  return store;
}

const freshPrefix = () => `/t-${randomBytes(6).toString('hex')}`;

/** Resolves once `predicate` holds after some change `store` reports (the watch). */
function until(store: StreamStore, predicate: () => boolean, what: string): Promise<void> {
  if (predicate()) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { off(); reject(new Error(`timed out waiting for ${what}`)); }, 10_000);
    const off = store.onChange(() => {
      if (!predicate()) return;
      clearTimeout(timer);
      off();
      resolve();
    });
  });
}

streamStoreContract('EtcdStreamStore', async () => {
  const prefix = freshPrefix();
  return { store: await open(prefix), reopen: () => open(prefix) };
});

test('EtcdStreamStore: another broker\'s store follows every change through its watch', async () => {
  const prefix = freshPrefix();
  const a = await open(prefix);
  const b = await open(prefix);
  await a.commit([{ type: 'create', meta: streamMeta('w') }]);
  await until(b, () => b.get('w') !== undefined, 'the create on b');
  assert.equal(b.get('w')?.revision, a.get('w')?.revision);
  const s = a.get('w')!;
  await a.commit([{ type: 'update', expected: s, next: withChanges(s, { closed: true }) }]);
  await until(b, () => b.get('w')?.closed === true, 'the close on b');
  // b decides on what it holds: a compare-and-swap at a's revision wins, at the old one loses.
  assert.equal(await b.commit([{ type: 'update', expected: s, next: withChanges(s, { lastStreamSeq: '1' }) }]), false);
  assert.equal(await b.commit([{ type: 'remove', expected: b.get('w')! }]), true);
  await until(a, () => a.get('w') === undefined, 'the remove on a');
  assert.equal(a.size, 0);
});

test('EtcdStreamStore: racing creates of one path on two brokers: exactly one wins, both then hold the winner', async () => {
  const prefix = freshPrefix();
  const a = await open(prefix);
  const b = await open(prefix);
  for (let i = 0; i < 10; i++) {
    const path = `race-${i}`;
    const ma = streamMeta(path, { contentType: 'a' });
    const mb = streamMeta(path, { contentType: 'b' });
    const [wa, wb] = await Promise.all([a.commit([{ type: 'create', meta: ma }]), b.commit([{ type: 'create', meta: mb }])]);
    assert.equal(Number(wa) + Number(wb), 1, `exactly one create of ${path} wins`);
    const winner = wa ? 'a' : 'b';
    assert.equal((await a.refresh(path))?.contentType, winner);
    assert.equal((await b.refresh(path))?.contentType, winner);
  }
});

test('EtcdStreamStore: refresh reads a change its watch has not delivered yet, and a late event does not undo it', async () => {
  const prefix = freshPrefix();
  const a = await open(prefix);
  const b = await open(prefix);
  await a.commit([{ type: 'create', meta: streamMeta('r') }]);
  const fresh = await b.refresh('r');
  assert.equal(fresh?.incarnation, a.get('r')?.incarnation);
  await a.commit([{ type: 'remove', expected: a.get('r')! }]);
  assert.equal(await b.refresh('r'), undefined);
  await new Promise((r) => setTimeout(r, 200));
  assert.equal(b.get('r'), undefined, 'the watch\'s create event (older than the read delete) is ignored');
});
