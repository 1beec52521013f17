/**
 * One WebSocket connection's protocol session: hello/version negotiation,
 * then request frames dispatched to the broker, its subscriptions, its
 * in-flight produce budget and its backpressure state.
 *
 * State: `awaitingHello` → `ready` → `closed` (one checked transition each).
 * Invariants: no request but hello/ping is served before `ready`; bytes of
 * a uWS message are copied (produce batch) or decoded to fresh values before
 * `handleMessage` returns; a bad frame is answered with a coded error and
 * dropped, and `maxInvalidFramesPerConnection` of them close the connection;
 * nothing thrown by a handler escapes to uWS.
 */
import {
  ErrorTable, MIN_PROTOCOL_VERSION, PROTOCOL_VERSION, RunnelError, assertNever, decodeFrame, encodeFrame,
  type BrokerFrame, type ClientFrame, type ErrorName, type Frame, type GroupAssignmentFrame, type HelloFrame,
} from '@runnel/client/codec';
import { randomBytes } from 'node:crypto';
import type { Limits } from '../limits.ts';
import type { RunnelMetrics } from '../metrics.ts';
import type { GroupMemberSink } from '../groups/coordinator.ts';
import type { Broker } from './broker.ts';
import { closeCodeFor } from './close-codes.ts';
import type { Fanout } from './fanout.ts';
import { SessionRequests } from './session-requests.ts';
import { Subscription, type SubscriberConnection } from './subscription.ts';

/** What a session needs from its socket (a uWS WebSocket in production). */
export interface SessionSocket {
  /** uWS semantics: 1 sent, 0 buffered (backpressure), 2 dropped. */
  send(bytes: Uint8Array): number;
  getBufferedAmount(): number;
  subscribe(channel: string): void;
  unsubscribe(channel: string): void;
  /** Graceful close; calls `handleClose` synchronously. */
  end(code: number, reason: string): void;
}

export interface SessionDeps {
  broker: Broker;
  fanout: Fanout;
  limits: Limits;
  metrics?: RunnelMetrics;
  /** ws:// URL advertised in metadata. */
  brokerUrl: string;
  nowMs(): number;
}

export type SessionState = 'awaitingHello' | 'ready' | 'closed';

let nextSessionId = 1;

export class Session implements SubscriberConnection, GroupMemberSink {
  readonly id = nextSessionId++;
  readonly sessionId = randomBytes(8).toString('hex');
  state: SessionState = 'awaitingHello';
  clientId = '';
  liveCount = 0;
  /** Since when the socket has been over maxBackpressureBytes (slow-consumer clock), null = not paused. */
  pausedSinceMs: number | null = null;
  /** New produce is refused with SHUTTING_DOWN. */
  isShuttingDown = false;
  readonly subscriptions = new Map<string, Subscription>();
  private invalidFrames = 0;
  private readonly requests: SessionRequests;

  constructor(private readonly socket: SessionSocket, readonly deps: SessionDeps) {
    this.requests = new SessionRequests(this);
  }

  get isClosed(): boolean {
    return this.state === 'closed';
  }

  /** Produce requests whose ack is pending (graceful shutdown waits for them). */
  get inflight(): Set<Promise<void>> {
    return this.requests.inflight;
  }

  private transition(to: SessionState): void {
    const legal = (this.state === 'awaitingHello' && to !== 'awaitingHello') || (this.state === 'ready' && to === 'closed');
    if (!legal) throw new RunnelError('UNKNOWN_SERVER_ERROR', `illegal session transition ${this.state} → ${to}`);
    this.state = to;
  }

  /** One binary message. `bytes` is only valid during this call. */
  handleMessage(bytes: Uint8Array, isBinary: boolean): void {
    if (this.state === 'closed') return;
    if (!isBinary) return this.rejectFrame('INVALID_FRAME', 'text messages are not part of the protocol; send binary frames');
    const decoded = decodeFrame(bytes, { maxFrameBytes: this.deps.limits.maxFrameBytes });
    if (!decoded.ok) return this.rejectFrame(decoded.code, decoded.message);
    const frame = decoded.value;
    if (this.state === 'awaitingHello' && frame.type !== 'hello' && frame.type !== 'ping') {
      return this.rejectFrame('INVALID_REQUEST', `first frame must be hello, got ${frame.type}`, requestIdOf(frame));
    }
    this.dispatch(frame);
  }

  private dispatch(frame: Frame): void {
    switch (frame.type) {
      case 'hello': return this.handleHello(frame);
      case 'ping': return this.sendFrame({ type: 'pong', nonce: frame.nonce });
      case 'pong': return;
      case 'metadataRequest': case 'initProducer': case 'produce': case 'subscribe': case 'unsubscribe': case 'credit':
      case 'offsetCommit': case 'offsetFetch': case 'groupJoin': case 'groupHeartbeat': case 'groupLeave':
        return this.requests.handle(frame as ClientFrame);
      case 'helloOk': case 'metadata': case 'initProducerOk': case 'produceAck': case 'subscribed': case 'records':
      case 'offsetCommitAck': case 'offsetFetchResult': case 'groupAssignment': case 'error':
        return this.rejectFrame('INVALID_REQUEST', `${frame.type} is a broker-to-client frame`, requestIdOf(frame));
      default: assertNever(frame, 'frame');
    }
  }

  private handleHello(frame: HelloFrame): void {
    if (this.state !== 'awaitingHello') return this.rejectFrame('INVALID_REQUEST', 'hello was already received on this connection');
    const version = Math.min(frame.maxVersion, PROTOCOL_VERSION);
    if (version < Math.max(frame.minVersion, MIN_PROTOCOL_VERSION)) {
      return this.closeWith('UNSUPPORTED_VERSION', `client speaks versions ${frame.minVersion}-${frame.maxVersion}, broker ${MIN_PROTOCOL_VERSION}-${PROTOCOL_VERSION}`);
    }
    this.transition('ready');
    this.clientId = frame.clientId;
    const { limits } = this.deps;
    this.sendFrame({
      type: 'helloOk', version, brokerId: this.deps.broker.config.brokerId, sessionId: this.sessionId,
      maxFrameBytes: limits.maxFrameBytes, maxBatchBytes: limits.maxBatchBytes, maxInflightProduce: limits.maxInflightProducePerConnection,
    });
  }

  /** Coded error for a dropped frame; too many close the connection. */
  rejectFrame(name: ErrorName, message: string, requestId = 0): void {
    this.sendError(requestId, name, message);
    if (++this.invalidFrames >= this.deps.limits.maxInvalidFramesPerConnection) {
      this.closeWith('INVALID_FRAME', `${this.invalidFrames} invalid frames on this connection`);
    }
  }

  sendError(requestId: number, name: ErrorName, message: string, retryAfterMs = 0): void {
    this.sendFrame({ type: 'error', requestId, errorCode: ErrorTable[name].code, message: message.slice(0, 1000), retryAfterMs });
  }

  sendFrame(frame: BrokerFrame): void {
    this.send(encodeFrame(frame));
  }

  /** Sends an error frame, then closes with the mapped close code and the error name as reason. */
  closeWith(name: ErrorName, message: string): void {
    if (this.state === 'closed') return;
    this.sendError(0, name, message);
    if (this.isClosed) return; // the send itself may have closed it
    this.socket.end(closeCodeFor(name), name);
  }

  /** Closes with a plain code (shutdown: 1001 going away). */
  end(code: number, reason: string): void {
    if (this.state !== 'closed') this.socket.end(code, reason);
  }

  // ---- SubscriberConnection ----

  send(frame: Uint8Array): boolean {
    if (this.state === 'closed') return false;
    const result = this.socket.send(frame);
    const limit = this.deps.limits.maxBackpressureBytes;
    if (result === 2 || this.socket.getBufferedAmount() >= 2 * limit) {
      this.deps.metrics?.backpressureDrops.inc({ reason: 'slow_consumer' });
      this.socket.end(closeCodeFor('SLOW_CONSUMER'), 'SLOW_CONSUMER');
      return false;
    }
    return true;
  }

  bufferedAmount(): number {
    return this.state === 'closed' ? 0 : this.socket.getBufferedAmount();
  }

  subscribeChannel(channel: string): void {
    this.socket.subscribe(channel);
  }

  unsubscribeChannel(channel: string): void {
    if (this.state !== 'closed') this.socket.unsubscribe(channel);
  }

  roomBytes(): number {
    return this.deps.limits.maxBackpressureBytes - this.bufferedAmount();
  }

  notePaused(): void {
    this.pausedSinceMs ??= this.deps.nowMs();
  }

  subscriptionFailed(sub: Subscription, errorCode: number): void {
    if (this.subscriptions.get(sub.key) === sub) {
      this.subscriptions.delete(sub.key);
      this.deps.metrics?.subscriptions.dec();
    }
    const log = sub.fanout.log;
    this.sendFrame({
      type: 'subscribed', requestId: 0, topic: sub.fanout.topic.name, partition: sub.fanout.partition, errorCode,
      topicId: sub.fanout.topic.topicId, startOffset: -1, logStartOffset: log.logStartOffset, highWatermark: sub.fanout.live.lastPublishedEnd,
    });
  }

  // ---- GroupMemberSink ----

  sendAssignment(frame: GroupAssignmentFrame): void {
    this.sendFrame(frame);
  }

  // ---- socket events ----

  /** uWS drain (or the sweep saw the buffer go down): resume paused subscriptions. */
  handleDrain(): void {
    if (this.state === 'closed' || this.roomBytes() <= 0) return;
    this.pausedSinceMs = null;
    for (const sub of this.subscriptions.values()) sub.fanout.advance(sub);
  }

  /** Periodic check: resume when drained, close when paused past slowConsumerTimeoutMs. */
  checkBackpressure(nowMs: number): void {
    if (this.pausedSinceMs === null || this.state === 'closed') return;
    if (this.roomBytes() > 0) return this.handleDrain();
    if (nowMs - this.pausedSinceMs > this.deps.limits.slowConsumerTimeoutMs) {
      this.deps.metrics?.backpressureDrops.inc({ reason: 'slow_consumer' });
      this.closeWith('SLOW_CONSUMER', `socket stayed above ${this.deps.limits.maxBackpressureBytes} buffered bytes for ${nowMs - this.pausedSinceMs} ms`);
    }
  }

  handleClose(): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    for (const sub of this.subscriptions.values()) sub.fanout.remove(sub);
    this.deps.metrics?.subscriptions.dec(this.subscriptions.size);
    this.subscriptions.clear();
    this.deps.broker.groups.leaveAll(this);
  }
}

function requestIdOf(frame: Frame): number {
  return 'requestId' in frame ? frame.requestId : 0;
}
