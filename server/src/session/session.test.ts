/**
 * The session state machine over the `SessionSocket` seam: a fake socket
 * records what the session sends; behind it the real request layer, broker
 * (temp dir, fdatasync) and fan-out, with uWS `publish` modelled by routing
 * frames to the fake sockets subscribed to the channel.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ErrorTable, PROTOCOL_VERSION, decodeFrame, encodeFrame, encodeRecordBatch, type BrokerFrame, type Frame } from '@runnel/client/codec';
import { Broker } from '../broker/broker.ts';
import { Fanout } from '../fanout/fanout.ts';
import { validateLimits, type Limits } from '../limits.ts';
import { RequestLayer } from '../request/request-layer.ts';
import { closeCodeFor } from './close-codes.ts';
import { Session } from './session.ts';
import type { SessionSocket } from './session-socket.ts';

class FakeSocket implements SessionSocket {
  readonly frames: BrokerFrame[] = [];
  readonly channels = new Set<string>();
  closed: { code: number; reason: string } | null = null;
  session!: Session;
  send(bytes: Uint8Array): number {
    const f = decodeFrame(bytes);
    assert.ok(f.ok, 'the session sends decodable frames');
    this.frames.push(f.value as BrokerFrame);
    return 1;
  }
  getBufferedAmount(): number { return 0; }
  subscribe(channel: string): void { this.channels.add(channel); }
  unsubscribe(channel: string): void { this.channels.delete(channel); }
  end(code: number, reason: string): void {
    this.closed = { code, reason };
    this.session.handleClose();
  }
  of<T extends BrokerFrame['type']>(type: T): Extract<BrokerFrame, { type: T }>[] {
    return this.frames.filter((f) => f.type === type) as Extract<BrokerFrame, { type: T }>[];
  }
}

async function setup(limits: Partial<Limits> = {}) {
  const dataDir = await mkdtemp(join(tmpdir(), 'runnel-session-'));
  const l = validateLimits(limits);
  const broker = await Broker.open({ brokerId: 7, dataDir, host: '127.0.0.1', port: 0, autoCreateTopics: true, defaultPartitions: 1, flushIntervalMs: 0, limits: l });
  const sockets: FakeSocket[] = [];
  const fanout = new Fanout(broker, l, (channel, frame) => {
    for (const s of sockets) if (s.channels.has(channel)) s.send(frame);
  });
  const api = new RequestLayer(broker);
  const open = () => {
    const socket = new FakeSocket();
    socket.session = new Session(socket, { api, fanout, limits: l, brokerUrl: 'ws://test/v1/ws', nowMs: () => Date.now() }, '127.0.0.1');
    sockets.push(socket);
    const send = (frame: Frame) => socket.session.handleMessage(encodeFrame(frame), true);
    return { socket, session: socket.session, send };
  };
  const close = async () => {
    fanout.close();
    await broker.close();
    await rm(dataDir, { recursive: true, force: true });
  };
  return { broker, open, close, limits: l };
}

const hello = { type: 'hello', minVersion: PROTOCOL_VERSION, maxVersion: PROTOCOL_VERSION, clientId: 'c1', token: '' } as const;
const until = async (cond: () => boolean) => {
  for (let i = 0; i < 500 && !cond(); i++) await new Promise((r) => setTimeout(r, 5));
  assert.ok(cond(), 'condition reached');
};

test('awaitingHello: only hello and ping are served; hello once; then ready', async () => {
  const t = await setup();
  try {
    const { socket, session, send } = t.open();
    send({ type: 'metadataRequest', requestId: 1, topics: [], allowAutoTopicCreation: 1 });
    assert.equal(socket.of('error')[0].errorCode, ErrorTable.INVALID_REQUEST.code);
    assert.equal(socket.of('error')[0].requestId, 1);
    send({ type: 'ping', nonce: 5 });
    assert.equal(socket.of('pong').length, 1);
    send(hello);
    assert.equal(session.state, 'ready');
    assert.equal(socket.of('helloOk')[0].brokerId, 7);
    assert.equal(session.clientId, 'c1');
    send(hello);
    assert.equal(socket.of('error').length, 2, 'a second hello is refused');
    assert.equal(socket.closed, null);
  } finally {
    await t.close();
  }
});

test('an unsupported version closes with UNSUPPORTED_VERSION; a closed session sends nothing more', async () => {
  const t = await setup();
  try {
    const { socket, session, send } = t.open();
    send({ ...hello, minVersion: 9, maxVersion: 9 });
    assert.deepEqual(socket.closed, { code: closeCodeFor('UNSUPPORTED_VERSION'), reason: 'UNSUPPORTED_VERSION' });
    assert.equal(session.state, 'closed');
    const sent = socket.frames.length;
    send({ type: 'ping', nonce: 1 });
    assert.equal(socket.frames.length, sent);
  } finally {
    await t.close();
  }
});

test('text frames and undecodable bytes are refused; maxInvalidFramesPerConnection of them close the connection', async () => {
  const t = await setup({ maxInvalidFramesPerConnection: 3 });
  try {
    const { socket, session, send } = t.open();
    send(hello);
    session.handleMessage(new Uint8Array([1, 2, 3]), false);
    session.handleMessage(new Uint8Array([0xff, 0xff, 0xff, 0xff]), true);
    assert.equal(socket.closed, null);
    session.handleMessage(new Uint8Array([0xff]), true);
    assert.deepEqual(socket.closed, { code: closeCodeFor('INVALID_FRAME'), reason: 'INVALID_FRAME' });
  } finally {
    await t.close();
  }
});

test('produce is acked after it is durable; metadata reports the partition; subscribe answers, then streams', async () => {
  const t = await setup();
  try {
    const { socket, send } = t.open();
    send(hello);
    send({ type: 'produce', requestId: 2, topic: 'orders', partition: 0, acks: -1, batch: encodeRecordBatch({ baseTimestamp: Date.now(), records: [{ value: new Uint8Array([1]) }, { value: new Uint8Array([2]) }] }) });
    await until(() => socket.of('produceAck').length === 1);
    const ack = socket.of('produceAck')[0];
    assert.deepEqual([ack.requestId, ack.errorCode, ack.baseOffset, ack.logStartOffset], [2, 0, 0, 0]);
    assert.equal(t.broker.describeTopic('orders').partitions[0].highWatermark, 2, 'durable and visible before the ack');
    send({ type: 'metadataRequest', requestId: 3, topics: ['orders'], allowAutoTopicCreation: 1 });
    await until(() => socket.of('metadata').length === 1);
    assert.equal(socket.of('metadata')[0].topics[0].partitions[0].highWatermark, 2);
    send({ type: 'subscribe', requestId: 4, topic: 'orders', partition: 0, topicId: '', from: { kind: 'earliest' }, creditBytes: 1 << 20 });
    await until(() => socket.of('records').length >= 1);
    const answerAt = socket.frames.findIndex((f) => f.type === 'subscribed');
    const recordsAt = socket.frames.findIndex((f) => f.type === 'records');
    assert.ok(answerAt >= 0 && answerAt < recordsAt, 'subscribed is answered before the first records frame');
    assert.equal(socket.of('subscribed')[0].startOffset, 0);
  } finally {
    await t.close();
  }
});

test('requests over maxPendingRequestsPerConnection are refused LIMIT_EXCEEDED with their request id', async () => {
  const t = await setup({ maxPendingRequestsPerConnection: 1 });
  try {
    const { socket, send } = t.open();
    send(hello);
    send({ type: 'metadataRequest', requestId: 10, topics: ['a'], allowAutoTopicCreation: 1 });
    send({ type: 'metadataRequest', requestId: 11, topics: ['b'], allowAutoTopicCreation: 1 });
    const refused = socket.of('error').find((e) => e.requestId === 11);
    assert.equal(refused?.errorCode, ErrorTable.LIMIT_EXCEEDED.code);
    await until(() => socket.of('metadata').length === 1);
    assert.equal(socket.of('metadata')[0].requestId, 10);
  } finally {
    await t.close();
  }
});

test('closing the socket ends its group memberships at once', async () => {
  const t = await setup();
  try {
    const { socket, send } = t.open();
    send(hello);
    await t.broker.createTopic({ name: 'g-topic', partitions: 2, replicationFactor: 1 });
    send({ type: 'groupJoin', requestId: 5, group: 'g', memberId: '', topics: ['g-topic'], sessionTimeoutMs: 60_000 });
    await until(() => socket.of('groupAssignment').length === 1);
    assert.equal(socket.of('groupAssignment')[0].errorCode, 0);
    assert.equal((await t.broker.groups.describeGroup('g')).members.length, 1);
    socket.end(1000, 'bye');
    assert.equal((await t.broker.groups.listGroups()).find((g) => g.group === 'g')?.members ?? 0, 0);
  } finally {
    await t.close();
  }
});
