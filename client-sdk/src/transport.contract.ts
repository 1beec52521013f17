/**
 * Shared contract suite for every Transport implementation (STYLE.md §4):
 * the same tests run on WebSocket (`ws`) and MessagePort transports.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Condition } from './condition.ts';
import type { TransportFactory, TransportListener } from './transport.ts';

/** An echo peer: echoes every frame; can close from its side. */
export interface TransportPeer {
  factory: TransportFactory;
  url: string;
  closeFromPeer(code: number, reason: string): void;
  stop(): Promise<void>;
}

interface Recorded { events: string[]; messages: Uint8Array[]; closed: Promise<{ code: number; reason: string }>; opened: Promise<void>; received(count: number): Promise<void> }

function record(): Recorded & { listener: TransportListener } {
  const events: string[] = [];
  const messages: Uint8Array[] = [];
  const arrived = new Condition();
  let onClose!: (v: { code: number; reason: string }) => void;
  let onOpen!: () => void;
  const closed = new Promise<{ code: number; reason: string }>((r) => (onClose = r));
  const opened = new Promise<void>((r) => (onOpen = r));
  const listener: TransportListener = {
    open: () => { events.push('open'); onOpen(); },
    message: (d) => { events.push('message'); messages.push(d.slice()); arrived.notify(); },
    close: (code, reason) => { events.push('close'); onClose({ code, reason }); },
    error: () => events.push('error'),
  };
  return { events, messages, closed, opened, listener, received: (count) => arrived.until(() => messages.length >= count) };
}

export function transportContract(name: string, startPeer: () => Promise<TransportPeer>): void {
  test(`${name}: opens, echoes frames whole and in order`, async () => {
    const peer = await startPeer();
    try {
      const r = record();
      const t = peer.factory(peer.url, r.listener);
      await r.opened;
      const frames = Array.from({ length: 50 }, (_, i) => new Uint8Array(i * 37 + 1).fill(i));
      for (const f of frames) t.send(f);
      await r.received(frames.length);
      assert.deepEqual(r.messages, frames);
      assert.equal(typeof t.bufferedAmount, 'number');
      t.close(1000, 'done');
      await r.closed;
      assert.equal(r.events[0], 'open');
      assert.equal(r.events.at(-1), 'close');
      assert.equal(r.events.filter((e) => e === 'close').length, 1);
    } finally {
      await peer.stop();
    }
  });

  test(`${name}: a close from the peer reports its code and reason once`, async () => {
    const peer = await startPeer();
    try {
      const r = record();
      const t = peer.factory(peer.url, r.listener);
      await r.opened;
      t.send(new Uint8Array([1]));
      await r.received(1);
      peer.closeFromPeer(4001, 'bye');
      assert.deepEqual(await r.closed, { code: 4001, reason: 'bye' });
      t.send(new Uint8Array([2])); // dropped, no throw
      t.close();
      await new Promise((res) => setTimeout(res, 20));
      assert.equal(r.events.filter((e) => e === 'close').length, 1);
    } finally {
      await peer.stop();
    }
  });

  test(`${name}: a failed dial closes without opening`, async () => {
    const peer = await startPeer();
    await peer.stop();
    const r = record();
    peer.factory(peer.url.replace(/\d+$/, '1'), r.listener);
    await r.closed;
    assert.ok(!r.events.includes('open'));
  });
}
