/**
 * A cluster broker between opening its replication port and opening its
 * topics (log recovery after a crash takes seconds): a peer's forwarded
 * produce must get a retryable answer. It got INVALID_REQUEST ("serves no
 * request type"), which the client's producer took as final (issue 12,
 * fault seeds 1071, 1033, 1075 after killAll). Real etcd, real TCP.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { RunnelError } from '@runnel/client/codec';
import { EtcdProcess } from '../cluster/etcd-process.ts';
import { validateLimits } from '../limits.ts';
import { ClusterNode } from './cluster-node.ts';
import { PeerForwarder } from './leader-forwarder.ts';
import { PeerLinks } from '../replication/peer-links.ts';
import { TEST_LINK_KEY } from '../replication/testing/link-key.ts';
import { deriveLinkKey } from '../replication/link-auth.ts';

test('forwarded produce before the registry opens: NOT_LEADER_OR_FOLLOWER (retryable), not INVALID_REQUEST', { timeout: 60_000 }, async () => {
  const etcd = await EtcdProcess.start();
  const dir = await mkdtemp(join(tmpdir(), 'runnel-node-startup-'));
  const limits = validateLimits({});
  let node: ClusterNode | undefined;
  let links: PeerLinks | undefined;
  try {
    node = await ClusterNode.open({
      brokerId: 1, dataDir: dir, host: '127.0.0.1', flushIntervalMs: 1000, limits, log: () => {}, warn: () => {},
      cluster: { etcdEndpoints: [etcd.url], prefix: '/startup-test', replicationHost: '127.0.0.1', replicationPort: 0, peerAddresses: new Map() },
    });
    const address = node.server.address;
    links = new PeerLinks({ linkKey: deriveLinkKey(await node.store.producerIdKey()), brokerId: 2, directory: { replicationAddress: (id) => (id === 1 ? address : undefined) }, limits: {} });
    const forwarder = new PeerForwarder(links, { forwardTimeoutMs: 10_000, maxReadBytes: 1 << 20, maxLongPollMs: 1000, maxBatchBytes: 1 << 20 });
    // node.topics() not called yet: the broker is still recovering its logs.
    await assert.rejects(forwarder.produce(1, 'some-topic-id', 0, new Uint8Array(61), -1), (e: unknown) => {
      assert.ok(e instanceof RunnelError, String(e));
      assert.equal(e.errorName, 'NOT_LEADER_OR_FOLLOWER', e.message);
      assert.ok(e.retryable);
      return true;
    });
    // Not a broker of this cluster (it lacks the link key from etcd): refused before any request is served.
    const stranger = new PeerLinks({ linkKey: TEST_LINK_KEY, brokerId: 3, directory: { replicationAddress: (id) => (id === 1 ? address : undefined) }, limits: {} });
    try {
      await assert.rejects(new PeerForwarder(stranger, { forwardTimeoutMs: 10_000, maxReadBytes: 1 << 20, maxLongPollMs: 1000, maxBatchBytes: 1 << 20 }).produce(1, 'some-topic-id', 0, new Uint8Array(61), -1),
        (e: unknown) => e instanceof RunnelError && e.errorName === 'NOT_CONNECTED' && /did not prove the cluster's link key/.test(e.message));
    } finally {
      stranger.close();
    }
  } finally {
    links?.close();
    await node?.close();
    await etcd.stop();
    await rm(dir, { recursive: true, force: true });
  }
});
