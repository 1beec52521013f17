import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { Etcd3 } from 'etcd3';
import { EtcdProcess } from './etcd-process.ts';

test('EtcdProcess: put/get, SIGKILL, restart on the same dir and ports: the data is still there', { timeout: 60_000 }, async () => {
  const etcd = await EtcdProcess.start();
  const client = new Etcd3({ hosts: etcd.url });
  try {
    await client.put('k').value('v1');
    assert.equal(await client.get('k').string(), 'v1');
    const { url, dataDir } = etcd;
    await etcd.kill('SIGKILL');
    assert.equal(etcd.isRunning, false);
    await assert.rejects(fetch(`${url}/health`), 'no etcd listens after SIGKILL');
    await etcd.restart();
    assert.equal(etcd.url, url);
    assert.equal(etcd.dataDir, dataDir);
    const fresh = new Etcd3({ hosts: etcd.url });
    try {
      assert.equal(await fresh.get('k').string(), 'v1');
    } finally {
      fresh.close();
    }
    // The old client reconnects to the restarted server by itself.
    assert.equal(await client.get('k').string(), 'v1');
  } finally {
    client.close();
    await etcd.dispose();
  }
  assert.equal(existsSync(etcd.dataDir), false, 'dispose removes the tmp data dir');
});

test('EtcdProcess: SIGSTOP freezes it (requests time out), SIGCONT resumes it', { timeout: 60_000 }, async () => {
  const etcd = await EtcdProcess.start();
  const client = new Etcd3({ hosts: etcd.url });
  try {
    await client.put('k').value('v');
    await etcd.kill('SIGSTOP');
    await assert.rejects(fetch(`${etcd.url}/health`, { signal: AbortSignal.timeout(300) }));
    await etcd.kill('SIGCONT');
    assert.equal(await client.get('k').string(), 'v');
    await etcd.stop();
    assert.equal(etcd.isRunning, false);
    await etcd.stop(); // idempotent
  } finally {
    client.close();
    await etcd.dispose();
  }
});

test('EtcdProcess: a missing binary names the package to install', async () => {
  await assert.rejects(EtcdProcess.start({ bin: '/nonexistent/etcd' }), /apt-get install -y etcd-server/);
});
