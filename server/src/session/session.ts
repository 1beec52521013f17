/**
 * One WebSocket connection's protocol session: hello/version negotiation,
 * then request frames dispatched to the request layer (requests.ts,
 * session-subscriptions.ts), its in-flight produce budget and its
 * backpressure state.
 *
 * State: `awaitingHello` → `authenticating` → `ready` → `closed` (one checked
 * transition each; every state may close).
 * Invariants: no request but hello/ping is served before `ready`, and `ready`
 * is reached only with a verified principal (or anonymous without auth); a
 * principal whose token expires is closed TOKEN_EXPIRED unless refreshed; bytes of
 * a uWS message are copied (produce batch) or decoded to fresh values before
 * `handleMessage` returns; a bad frame is answered with a coded error and
 * dropped, and `maxInvalidFramesPerConnection` of them close the connection;
 * nothing thrown by a handler escapes to uWS; every request carries this
 * session's RequestContext.
 */
import {
  ErrorTable, MIN_PROTOCOL_VERSION, PROTOCOL_VERSION, RunnelError, assertNever, decodeFrame, encodeFrame,
  type AuthenticateFrame, type AuthenticateOkFrame, type BrokerFrame, type ErrorName, type Frame, type GroupAssignmentFrame, type HelloFrame, type InitProducerFrame,
  type InitProducerOkFrame, type ProduceFrame,
} from '@runnel/client/codec';
import { randomBytes } from 'node:crypto';
import { slowConsumerCloseBytes, type Limits } from '../limits.ts';
import type { RunnelMetrics } from '../metrics.ts';
import type { GroupMemberSink } from '../groups/coordinator.ts';
import type { Fanout } from '../fanout/fanout.ts';
import type { Subscription, SubscriberConnection } from '../fanout/subscription.ts';
import type { BrokerApi } from '../request/broker-api.ts';
import { ANONYMOUS, requestContext, type RequestContext } from '../request/request-context.ts';
import { closeCodeFor } from './close-codes.ts';
import {
  answerGroupHeartbeat, answerGroupJoin, answerGroupLeave, answerInitProducer, answerMetadata, answerOffsetCommit, answerOffsetFetch, answerProduce, errorOf, produceAck,
} from './requests.ts';
import { SessionSubscriptions } from './session-subscriptions.ts';
import type { SessionSocket } from './session-socket.ts';

export type { SessionSocket } from './session-socket.ts';

export interface SessionDeps {
  api: BrokerApi;
  fanout: Fanout;
  limits: Limits;
  metrics?: RunnelMetrics;
  /** ws:// URL advertised in metadata. */
  brokerUrl: string;
  nowMs(): number;
}

/** `authenticating`: hello received, its token being verified (no other frame is served meanwhile). */
export type SessionState = 'awaitingHello' | 'authenticating' | 'ready' | 'closed';

let nextSessionId = 1;

export class Session implements SubscriberConnection, GroupMemberSink {
  readonly id = nextSessionId++;
  readonly sessionId = randomBytes(8).toString('hex');
  state: SessionState = 'awaitingHello';
  liveCount = 0;
  /** Since when the socket has been over maxBackpressureBytes (slow-consumer clock), null = not paused. */
  pausedSinceMs: number | null = null;
  /** New produce is refused with SHUTTING_DOWN. */
  isShuttingDown = false;
  /** Requests whose answer is pending (graceful shutdown waits for them). */
  readonly inflight = new Set<Promise<void>>();
  readonly subscriptions: SessionSubscriptions;
  private ctx: RequestContext;
  /** Producer ids this connection claimed with initProducer (bounded by maxProducersPerConnection). */
  private readonly producers = new Set<number>();
  private readonly producerProof = { claimed: this.producers as ReadonlySet<number> };
  private invalidFrames = 0;
  private inflightProduce = 0;

  constructor(private readonly socket: SessionSocket, readonly deps: SessionDeps, remoteAddress = '') {
    this.ctx = requestContext('ws', remoteAddress);
    this.subscriptions = new SessionSubscriptions(this, deps);
  }

  get isClosed(): boolean {
    return this.state === 'closed';
  }

  get clientId(): string {
    return this.ctx.clientId;
  }

  private transition(to: SessionState): void {
    const legal = (this.state === 'awaitingHello' && to !== 'awaitingHello')
      || (this.state === 'authenticating' && (to === 'ready' || to === 'closed'))
      || (this.state === 'ready' && to === 'closed');
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
    if (this.state !== 'ready' && frame.type !== 'hello' && frame.type !== 'ping') {
      return this.rejectFrame('INVALID_REQUEST', `${this.state === 'authenticating' ? 'wait for helloOk before sending' : 'first frame must be hello, got'} ${frame.type}`, requestIdOf(frame));
    }
    try {
      this.dispatch(frame);
    } catch (e) {
      const { name, message } = errorOf(e);
      this.sendError(requestIdOf(frame), name, message);
    }
  }

  private dispatch(frame: Frame): void {
    const { api } = this.deps;
    const ctx = this.ctx;
    switch (frame.type) {
      case 'hello': return this.handleHello(frame);
      case 'ping': return this.sendFrame({ type: 'pong', nonce: frame.nonce });
      case 'pong': return;
      case 'metadataRequest': return this.track(frame.requestId, () => answerMetadata(api, ctx, frame, this.deps.brokerUrl, this.deps.limits));
      case 'authenticate': return this.track(frame.requestId, () => this.reauthenticate(frame));
      case 'initProducer': return this.track(frame.requestId, () => this.initProducer(frame));
      case 'produce': return this.handleProduce(frame);
      case 'subscribe': return this.track(frame.requestId, () => this.subscriptions.subscribe(ctx, frame));
      case 'unsubscribe': return this.subscriptions.unsubscribe(frame.topic, frame.partition);
      case 'credit': {
        const refused = this.subscriptions.credit(ctx, frame.topic, frame.partition, frame.bytes);
        if (!refused) return;
        return refused.isInvalidFrame ? this.rejectFrame(refused.name, refused.message) : this.sendError(0, refused.name, refused.message);
      }
      case 'offsetCommit': return this.track(frame.requestId, () => answerOffsetCommit(api, ctx, frame));
      case 'offsetFetch': return this.track(frame.requestId, () => answerOffsetFetch(api, ctx, frame));
      case 'groupJoin': return this.track(frame.requestId, () => answerGroupJoin(api, ctx, frame, this));
      case 'groupHeartbeat': return this.track(0, async () => {
        for (const answer of await answerGroupHeartbeat(api, ctx, frame)) if (!this.isClosed) this.sendFrame(answer);
      });
      case 'groupLeave': return this.track(0, () => answerGroupLeave(api, ctx, frame));
      case 'helloOk': case 'metadata': case 'initProducerOk': case 'produceAck': case 'subscribed': case 'records':
      case 'offsetCommitAck': case 'offsetFetchResult': case 'groupAssignment': case 'error': case 'authenticateOk':
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
    this.transition('authenticating');
    const { api } = this.deps;
    const remoteAddress = this.ctx.remoteAddress;
    if (!api.requiresToken) {
      // No auth configured (loopback or --insecure): anonymous, and ready at once.
      this.ctx = requestContext('ws', remoteAddress, frame.clientId, ANONYMOUS);
      this.transition('ready');
      return this.sendHelloOk(version);
    }
    const verifying = api.authenticate(frame.token, remoteAddress).then((result) => {
      if (this.state !== 'authenticating') return;
      if (!result.ok) return this.closeWith(result.error.errorName, result.error.message);
      this.ctx = requestContext('ws', remoteAddress, frame.clientId, result.principal);
      this.transition('ready');
      this.sendHelloOk(version);
    });
    this.trackAnswer(verifying);
  }

  /** Closes a connection whose principal's token expired and was not refreshed (the sweep calls this). */
  checkExpiry(nowMs: number): void {
    if (this.state === 'ready' && nowMs >= this.ctx.principal.expiresAtMs) {
      this.deps.metrics?.authFailures.inc({ reason: 'expired' });
      this.closeWith('TOKEN_EXPIRED', `the token of ${this.ctx.principal.subject} expired at ${new Date(this.ctx.principal.expiresAtMs).toISOString()}; refresh it over the open connection before it expires`);
    }
  }

  private sendHelloOk(version: number): void {
    const { limits } = this.deps;
    this.sendFrame({
      type: 'helloOk', version, brokerId: this.deps.api.brokerId, sessionId: this.sessionId,
      maxFrameBytes: limits.maxFrameBytes, maxBatchBytes: limits.maxBatchBytes, maxInflightProduce: limits.maxInflightProducePerConnection,
      tokenExpiresAtMs: expiresAtMsOf(this.ctx.principal),
    });
  }

  /**
   * A fresh token over the open connection (KIP-368's re-authentication): it must verify and name the
   * same subject (a connection never changes whose it is); then its grants and expiry replace the old
   * ones. A refused refresh closes the connection, as a refused hello does.
   */
  private async reauthenticate(frame: AuthenticateFrame): Promise<AuthenticateOkFrame | null> {
    const { api } = this.deps;
    if (!api.requiresToken) return { type: 'authenticateOk', requestId: frame.requestId, errorCode: 0, tokenExpiresAtMs: -1 };
    const result = await api.authenticate(frame.token, this.ctx.remoteAddress);
    if (this.state !== 'ready') return null;
    if (!result.ok) {
      this.closeWith(result.error.errorName, result.error.message);
      return null;
    }
    if (result.principal.subject !== this.ctx.principal.subject) {
      this.closeWith('SASL_AUTHENTICATION_FAILED', `a refreshed token must name the connection's subject ${this.ctx.principal.subject}, not ${result.principal.subject}`);
      return null;
    }
    this.ctx = requestContext('ws', this.ctx.remoteAddress, this.ctx.clientId, result.principal);
    return { type: 'authenticateOk', requestId: frame.requestId, errorCode: 0, tokenExpiresAtMs: expiresAtMsOf(result.principal) };
  }

  /** initProducer, then the id counts as this connection's own (its batches may be produced here). */
  private async initProducer(frame: InitProducerFrame): Promise<InitProducerOkFrame> {
    if (!this.producers.has(frame.producerId) && this.producers.size >= this.deps.limits.maxProducersPerConnection) {
      return { type: 'initProducerOk', requestId: frame.requestId, producerId: -1, producerEpoch: -1, errorCode: ErrorTable.LIMIT_EXCEEDED.code, producerSecret: '' };
    }
    const answer = await answerInitProducer(this.deps.api, this.ctx, frame.requestId, frame.producerId, frame.producerEpoch, frame.producerSecret);
    if (answer.errorCode === 0 && this.producers.size < this.deps.limits.maxProducersPerConnection) this.producers.add(answer.producerId);
    return answer;
  }

  private handleProduce(frame: ProduceFrame): void {
    const { api, limits, metrics } = this.deps;
    if (this.isShuttingDown) return this.sendFrame(produceAck(frame, ErrorTable.SHUTTING_DOWN.code));
    if (this.inflightProduce >= limits.maxInflightProducePerConnection) return this.sendFrame(produceAck(frame, ErrorTable.LIMIT_EXCEEDED.code));
    const batch = frame.batch.slice(); // copy out of uWS's message buffer before any await
    this.inflightProduce++;
    this.trackAnswer(answerProduce(api, this.ctx, frame, batch, this.producerProof, metrics).finally(() => this.inflightProduce--));
  }

  /**
   * Runs a request whose answer is async, within maxPendingRequestsPerConnection
   * (produce has its own bound, maxInflightProducePerConnection).
   */
  private track(requestId: number, work: () => Promise<BrokerFrame | null | void>): void {
    if (this.inflight.size - this.inflightProduce >= this.deps.limits.maxPendingRequestsPerConnection) {
      return this.sendError(requestId, 'LIMIT_EXCEEDED', 'too many requests pending on this connection; wait for answers');
    }
    this.trackAnswer(work());
  }

  private trackAnswer(work: Promise<BrokerFrame | null | void>): void {
    const p = work.then(
      (answer) => {
        if (answer && !this.isClosed) this.sendFrame(answer);
      },
      (e: unknown) => {
        const { name, message } = errorOf(e);
        if (!this.isClosed) this.sendError(0, name, message);
      },
    );
    this.inflight.add(p);
    void p.finally(() => this.inflight.delete(p));
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
    if (result === 2 || this.socket.getBufferedAmount() >= slowConsumerCloseBytes(this.deps.limits)) {
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
    this.subscriptions.forget(sub);
    const target = sub.fanout;
    this.sendFrame({
      type: 'subscribed', requestId: 0, topic: target.topic.name, partition: target.partition, errorCode,
      topicId: target.topic.topicId, startOffset: -1, logStartOffset: target.source.logStartOffset, highWatermark: target.liveEnd,
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
    this.subscriptions.closeAll();
    this.deps.api.leaveAll(this);
  }
}

/** −1 for a principal that never expires (anonymous). */
function expiresAtMsOf(principal: RequestContext['principal']): number {
  return Number.isFinite(principal.expiresAtMs) ? principal.expiresAtMs : -1;
}

function requestIdOf(frame: Frame): number {
  return 'requestId' in frame ? frame.requestId : 0;
}
