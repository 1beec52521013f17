/**
 * A storage that fails (IndexedDB over quota, a corrupt file) must never
 * surface as an unhandled rejection (issue 12: none may escape the SDK):
 * an outbox that cannot be loaded is reported as an `error` event and
 * rejects each send, before and after the connection is up; an orphaned
 * outbox that cannot be loaded is released; failed deletes are left for a
 * reload. Each case left an unhandled rejection before.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createClient } from './client.ts';
import type { RunnelError } from './codec/error-codes.ts';
import { FakeBroker } from './fake-broker.ts';
import { memoryStorage } from './memory-storage.ts';
import type { OutboxStore, Storage } from './storage.ts';

/** Collects the process's unhandled rejections while `body` runs. */
async function noUnhandledRejections(body: () => Promise<void>): Promise<void> {
  const escaped: unknown[] = [];
  const onRejection = (reason: unknown): void => { escaped.push(reason); };
  process.on('unhandledRejection', onRejection);
  try {
    await body();
    await new Promise((r) => setTimeout(r, 50)); // let late rejections surface
  } finally {
    process.off('unhandledRejection', onRejection);
  }
  assert.deepEqual(escaped.map(String), [], 'unhandled rejections escaped the SDK');
}

const broken = (outbox: OutboxStore, what: (keyof OutboxStore)[]): OutboxStore => {
  const out = { ...outbox };
  for (const name of what) out[name] = (async () => { throw new Error(`disk says no (${name})`); }) as never;
  return out;
};

const until = async (what: string, cond: () => boolean, ms = 10_000): Promise<void> => {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
};

test('an outbox that cannot be loaded: reported, each send rejects, no unhandled rejection (before and after connecting)', { timeout: 20_000 }, async () => {
  const broker = new FakeBroker(1);
  await noUnhandledRejections(async () => {
    const base = memoryStorage();
    const storage: Storage = { ...base, outbox: broken(base.outbox, ['load']) };
    const c = createClient({ urls: 'ws://a/v1/ws', transport: broker.transport, storage, beacon: false });
    const errors: RunnelError[] = [];
    c.on('error', (e) => errors.push(e));
    try {
      // NB: nothing waits for the load before the connection is up (no send yet).
      await until('connected', () => c.state === 'connected');
      await until('the failed load reported', () => errors.length > 0);
      await assert.rejects(c.producer.send('t', { n: 1 }), /disk says no/);
      const second = c.producer.send('t', { n: 2 });
      await assert.rejects(second.queued, /disk says no/);
      await assert.rejects(second, /disk says no/);
    } finally {
      await c.close();
    }
  });
});

test('an orphaned outbox that cannot be loaded is released; failed deletes of records and batches leave no unhandled rejection', { timeout: 20_000 }, async () => {
  const broker = new FakeBroker(1);
  broker.autoCreateTopics = false;
  broker.createTopic('t', 1);
  await noUnhandledRejections(async () => {
    const base = memoryStorage();
    let released = 0;
    const storage: Storage = {
      ...base,
      outbox: broken(base.outbox, ['deleteRecords', 'deleteBatches']),
      orphans: async () => [{ outbox: broken(memoryStorage().outbox, ['load']), release: () => { released++; } }],
    };
    const c = createClient({ urls: 'ws://a/v1/ws', transport: broker.transport, storage, beacon: false, limits: { lingerMs: 1 } });
    try {
      await until('the orphan released', () => released === 1);
      assert.equal((await c.producer.send('t', { n: 1 })).offset, 0, 'acknowledged though its delete fails');
      await assert.rejects(c.producer.send('t', { n: 2 }, { partition: 3 }), (e: RunnelError) => e.errorName === 'UNKNOWN_TOPIC_OR_PARTITION');
    } finally {
      await c.close();
    }
  });
});
