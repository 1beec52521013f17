/**
 * SIGKILL of a broker child process while clients produce over WebSocket:
 * after a restart on the same data dir, every record whose produce was
 * acked is present, at its acked offset, with its bytes; offsets stay
 * contiguous. Several kill/restart cycles at random moments.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TestClient, makeBatch } from './harness.ts';
import { spawnBroker, type BrokerChild } from './child.ts';

const CYCLES = 5;

test(`every acked record survives SIGKILL of the broker (${CYCLES} cycles)`, { timeout: 180_000 }, async () => {
  const dataDir = await mkdtemp(join(tmpdir(), 'runnel-broker-crash-'));
  const acked = new Map<number, string>(); // offset → value
  let child: BrokerChild | undefined;
  try {
    for (let cycle = 0; cycle < CYCLES; cycle++) {
      child = await spawnBroker(dataDir);
      await verify(child.wsUrl, acked);
      const clients = await Promise.all([0, 1, 2].map(() => TestClient.connect(child!.wsUrl)));
      let stop = false;
      const producing = clients.map(async (c, k) => {
        for (let i = 0; !stop; i++) {
          const values = [`c${cycle}-k${k}-i${i}-a`, `c${cycle}-k${k}-i${i}-b`];
          let ack;
          try {
            ack = await c.produce('crash', 0, makeBatch(values));
          } catch {
            return; // connection died with the broker: unacked
          }
          if (ack.errorCode !== 0) return;
          values.forEach((v, j) => acked.set(ack.baseOffset + j, v));
        }
      });
      await new Promise((r) => setTimeout(r, 150 + Math.random() * 400));
      child.process.kill('SIGKILL');
      await child.exited;
      stop = true;
      await Promise.all(producing);
      for (const c of clients) c.close();
    }
    child = await spawnBroker(dataDir);
    await verify(child.wsUrl, acked);
    assert.ok(acked.size > 100, `enough acked records to mean something: ${acked.size}`);
  } finally {
    if (child && child.process.exitCode === null) {
      child.process.kill('SIGKILL');
      await child.exited;
    }
    await rm(dataDir, { recursive: true, force: true });
  }
});

async function verify(wsUrl: string, acked: Map<number, string>): Promise<void> {
  if (acked.size === 0) return;
  const maxOffset = Math.max(...acked.keys());
  const c = await TestClient.connect(wsUrl);
  const sub = await c.subscribe('crash', 0, { kind: 'earliest' }, 64 * 1024 * 1024);
  assert.equal(sub.errorCode, 0);
  assert.ok(sub.highWatermark > maxOffset, `highWatermark ${sub.highWatermark} covers acked offset ${maxOffset}`);
  const got = await c.waitForRecords('crash', 0, maxOffset + 1, 20_000);
  got.forEach((r, i) => assert.equal(r.offset, i, 'contiguous offsets'));
  for (const [offset, value] of acked) assert.equal(got[offset].value, value, `acked record at ${offset}`);
  c.close();
}
