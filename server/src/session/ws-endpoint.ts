/**
 * The `/v1/ws` endpoint: uWS WebSocket behaviour wired to Sessions, the
 * connection limit, the slow-consumer sweep and graceful shutdown.
 *
 * uWS rules honoured here: a message's ArrayBuffer is valid only during the
 * callback (Session copies or decodes it synchronously); a WebSocket must
 * not be used after `close` (Session.state guards it); nothing may throw out
 * of a callback (every handler is wrapped). uWS's own backpressure cap is
 * set above the broker's close threshold (limits.ts) so uWS never silently drops a
 * published frame for a subscriber the broker still counts as live, and
 * every socket keeps its uWS subscriber alive (uws-session-socket.ts) so
 * leaving a channel never drops frames published just before.
 */
import type { TemplatedApp } from 'uWebSockets.js';
import uws from '../broker/uws.ts';
import { Fanout, type PartitionSource } from '../fanout/fanout.ts';
import { oversizeFrameReadBytes, uwsMaxBackpressureBytes, type Limits } from '../limits.ts';
import type { RunnelMetrics } from '../metrics.ts';
import type { BrokerApi } from '../request/broker-api.ts';
import type { OriginPolicy } from '../request/origin-policy.ts';
import { GOING_AWAY, closeCodeFor } from './close-codes.ts';
import { overPausedBudget, type PausedSocket } from './paused-budget.ts';
import { Session } from './session.ts';
import { uwsSessionSocket } from './uws-session-socket.ts';

/** `ip`: the connections-per-IP quota unit this socket holds until it closes. */
interface UserData { session: Session | null; ip: string }

export interface WsEndpoint {
  readonly fanout: Fanout;
  connectionCount(): number;
  /** Refuse new upgrades and new produce requests. */
  stopAccepting(): void;
  /**
   * A cluster broker cut off from the cluster (replicated/isolation.ts) stops serving: open sessions are closed with
   * `code` (retryable, so clients move to another broker at once) and upgrades refused until it serves again.
   */
  setServing(serving: boolean, code: 'CLUSTER_UNAVAILABLE', reason: string): void;
  /** Resolves when every accepted produce request has been answered. */
  drainInflight(): Promise<void>;
  /** Closes every socket with `code` (1001 going away on shutdown). */
  closeAll(code: number, reason: string): void;
  close(): void;
}

export interface WsEndpointDeps {
  /** The request layer every frame goes through. */
  api: BrokerApi;
  /** Where the fan-out learns of partitions (the broker). */
  partitions: PartitionSource;
  limits: Limits;
  metrics?: RunnelMetrics;
  brokerUrl: () => string;
  /** Browser origins allowed to open a socket (the same list as CORS). */
  origins: OriginPolicy;
}

export function mountWebSocket(app: TemplatedApp, deps: WsEndpointDeps): WsEndpoint {
  const { api, limits, metrics } = deps;
  const sessions = new Set<Session>();
  let accepting = true;
  let unavailable: string | null = null;
  const fanout = new Fanout(deps.partitions, limits, (channel, frame) => {
    app.publish(channel, frame, true, false);
  }, metrics);
  const sessionDeps = { api, fanout, limits, metrics, get brokerUrl() { return deps.brokerUrl(); }, nowMs: () => Date.now() };

  const guard = (what: string, fn: () => void): void => {
    try {
      fn();
    } catch (error) {
      console.error(`runnel ws: unexpected error in ${what}`, error);
    }
  };

  app.ws<UserData>('/v1/ws', {
    // Frames up to OVERSIZE_FRAME_READ_FACTOR × the limit are read and answered MESSAGE_TOO_LARGE; beyond, uWS cuts the connection unread.
    maxPayloadLength: oversizeFrameReadBytes(limits),
    idleTimeout: limits.idleTimeoutSec,
    maxBackpressure: uwsMaxBackpressureBytes(limits),
    closeOnBackpressureLimit: 0 as unknown as number,
    sendPingsAutomatically: true,
    compression: uws.DISABLED,
    upgrade: (res, req, context) => {
      if (!accepting) {
        res.writeStatus('503 Service Unavailable').end('{"error":{"code":"SHUTTING_DOWN","message":"Broker is shutting down"}}');
        return;
      }
      if (unavailable !== null) {
        res.writeStatus('503 Service Unavailable').end(JSON.stringify({ error: { code: 'CLUSTER_UNAVAILABLE', message: unavailable } }));
        return;
      }
      const ip = Buffer.from(res.getRemoteAddressAsText()).toString();
      if (!api.admitConnection(ip)) {
        res.writeStatus('429 Too Many Requests').end('{"error":{"code":"LIMIT_EXCEEDED","message":"connections-per-IP quota reached"}}');
        return;
      }
      if (!deps.origins.isAllowed(req.getHeader('origin'), req.getHeader('host'))) {
        api.releaseConnection(ip);
        metrics?.authFailures.inc({ reason: 'origin' });
        res.writeStatus('403 Forbidden').end('{"error":{"code":"ORIGIN_NOT_ALLOWED","message":"Origin is not in the allowed origins (--cors-origins)"}}');
        return;
      }
      res.upgrade<UserData>({ session: null, ip }, req.getHeader('sec-websocket-key'), req.getHeader('sec-websocket-protocol'), req.getHeader('sec-websocket-extensions'), context);
    },
    open: (ws) => guard('open', () => {
      const session = new Session(uwsSessionSocket(ws), sessionDeps, ws.getUserData().ip);
      ws.getUserData().session = session;
      sessions.add(session);
      metrics?.connections.inc();
      if (sessions.size > limits.maxConnections) session.closeWith('LIMIT_EXCEEDED', `the broker already holds maxConnections (${limits.maxConnections}) connections`);
    }),
    message: (ws, message, isBinary) => guard('message', () => {
      ws.getUserData().session?.handleMessage(new Uint8Array(message), isBinary);
    }),
    drain: (ws) => guard('drain', () => ws.getUserData().session?.handleDrain()),
    close: (ws) => guard('close', () => {
      const data = ws.getUserData();
      const session = data.session;
      data.session = null;
      if (!session) return;
      api.releaseConnection(data.ip);
      sessions.delete(session);
      metrics?.connections.dec();
      session.handleClose();
    }),
  });

  const sweep = setInterval(() => guard('sweep', () => {
    const now = Date.now();
    const paused: PausedSocket<Session>[] = [];
    const checksExpiry = api.requiresToken;
    for (const s of sessions) {
      if (checksExpiry) s.checkExpiry(now);
      if (s.pausedSinceMs === null) continue;
      s.checkBackpressure(now);
      if (s.pausedSinceMs !== null && !s.isClosed) paused.push({ socket: s, bufferedBytes: s.bufferedAmount() });
    }
    metrics?.pausedBufferedBytes.set(paused.reduce((n, p) => n + p.bufferedBytes, 0));
    for (const s of overPausedBudget(paused, limits.maxPausedBufferedBytes)) {
      metrics?.backpressureDrops.inc({ reason: 'paused_budget' });
      s.closeWith('SLOW_CONSUMER', `paused sockets hold more than maxPausedBufferedBytes (${limits.maxPausedBufferedBytes}); this one held ${s.bufferedAmount()} bytes`);
    }
  }), limits.backpressureSweepMs);
  sweep.unref();

  return {
    fanout,
    connectionCount: () => sessions.size,
    stopAccepting() {
      accepting = false;
      for (const s of sessions) s.isShuttingDown = true;
    },
    async drainInflight() {
      for (;;) {
        const pending = [...sessions].flatMap((s) => [...s.inflight]);
        if (pending.length === 0) return;
        await Promise.allSettled(pending);
      }
    },
    setServing(serving, code, reason) {
      unavailable = serving ? null : reason;
      if (!serving) for (const s of [...sessions]) guard('setServing', () => s.closeWith(code, reason));
    },
    closeAll(code, reason) {
      for (const s of [...sessions]) guard('closeAll', () => (code === GOING_AWAY ? s.end(code, reason) : s.closeWith('SHUTTING_DOWN', reason)));
    },
    close() {
      clearInterval(sweep);
      fanout.close();
    },
  };
}

export { closeCodeFor };
