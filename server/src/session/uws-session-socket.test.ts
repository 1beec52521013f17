/**
 * uwsSessionSocket against real uWS: leaving a channel in the same
 * synchronous block that published to it (what PartitionFanout does when
 * one fdatasync makes several batches visible and a subscriber runs out of
 * credit between them) must not drop the frames already published to it.
 * Regression for the catch-up-live stall: uWS freed the socket's subscriber,
 * with its undelivered publishes, when it left its last channel.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import type { us_listen_socket } from 'uWebSockets.js';
import uws from '../broker/uws.ts';
import { uwsSessionSocket } from './uws-session-socket.ts';
import type { SessionSocket } from './session-socket.ts';

/** One uWS app on a free port; `onOpen` runs the scenario synchronously on the server side. */
async function withServer(onMessage: (socket: SessionSocket, publish: (channel: string, text: string) => void) => void, expected: number): Promise<string[]> {
  const app = uws.App();
  const publish = (channel: string, text: string): void => void app.publish(channel, Buffer.from(text), true, false);
  app.ws('/t', { message: (ws) => onMessage(uwsSessionSocket(ws), publish) });
  const listen = await new Promise<us_listen_socket>((resolve, reject) => app.listen('127.0.0.1', 0, (s) => (s ? resolve(s) : reject(new Error('listen failed')))));
  const client = new WebSocket(`ws://127.0.0.1:${uws.us_socket_local_port(listen)}/t`);
  try {
    const got: string[] = [];
    await new Promise<void>((resolve, reject) => {
      client.on('error', reject);
      client.on('open', () => client.send('go'));
      client.on('message', (data: Buffer) => {
        got.push(data.toString());
        if (got.length === expected) resolve();
      });
      setTimeout(() => resolve(), 2_000).unref(); // a lost frame shows as a short list, not a hang
    });
    // Anything published after leaving the channel would arrive right behind; give it one round trip.
    await new Promise((r) => setTimeout(r, 50));
    return got;
  } finally {
    client.terminate();
    uws.us_listen_socket_close(listen);
  }
}

test('frames published before leaving the only channel are delivered, later ones are not', async () => {
  const got = await withServer((socket, publish) => {
    socket.subscribe('topic/0');
    for (let i = 0; i < 3; i++) publish('topic/0', `live-${i}`);
    socket.unsubscribe('topic/0'); // out of credit: leaves the channel before uWS drained
    publish('topic/0', 'after-leave');
    socket.send(Buffer.from('catch-up'));
  }, 4);
  assert.deepEqual(got, ['live-0', 'live-1', 'live-2', 'catch-up']);
});

test('leave and re-join in one block keep offset order', async () => {
  const got = await withServer((socket, publish) => {
    socket.subscribe('topic/0');
    publish('topic/0', 'live-0');
    socket.unsubscribe('topic/0');
    socket.send(Buffer.from('catch-up-1'));
    socket.subscribe('topic/0');
    publish('topic/0', 'live-2');
    socket.unsubscribe('topic/0');
  }, 3);
  assert.deepEqual(got, ['live-0', 'catch-up-1', 'live-2']);
});
