/**
 * `startServer(config)`: one uWS app on one port serving the WebSocket
 * protocol at `/v1/ws` and the HTTP API (Hono through the uWS bridge) for
 * everything else. Logs loudly whether uWebSockets.js is native; with
 * `RUNNEL_REQUIRE_NATIVE_UWS=1` it refuses to start on the fallback.
 *
 * Shutdown order (`close()`): stop accepting (listen socket closed, new
 * upgrades and produce refused) → finish in-flight appends and their acks →
 * close sockets with 1001 going away → flush and close groups and logs.
 */
import type { us_listen_socket } from 'uWebSockets.js';
import { validateLimits } from './limits.ts';
import { createMetrics, type RunnelMetrics } from './metrics.ts';
import { createHttpApp } from './http/app.ts';
import { serveFetch } from './http/uws-bridge.ts';
import { Broker, type BrokerConfig } from './broker/broker.ts';
import { RequestLayer } from './request/request-layer.ts';
import { GOING_AWAY } from './session/close-codes.ts';
import { mountWebSocket } from './session/ws-endpoint.ts';
import uws, { assertNativeUws, uwsIsNative } from './broker/uws.ts';

export interface RunningServer {
  port: number;
  /** http://host:port */
  url: string;
  broker: Broker;
  metrics: RunnelMetrics;
  close(): Promise<void>;
}

export interface StartOptions {
  /** Where start-up lines go (default console.log / console.warn). */
  log?: (line: string) => void;
  warn?: (line: string) => void;
}

/**
 * @example
 * const server = await startServer({ ...config, port: 0 });
 * const ws = new WebSocket(`${server.url.replace('http', 'ws')}/v1/ws`);
 * await server.close();
 */
export async function startServer(config: BrokerConfig & { corsOrigins?: string[] }, options: StartOptions = {}): Promise<RunningServer> {
  const log = options.log ?? ((line: string) => console.log(line));
  const warn = options.warn ?? ((line: string) => console.warn(line));
  if (uwsIsNative) log('runnel: uWebSockets.js: native');
  else {
    warn('runnel: WARNING: uWebSockets.js is NOT native: running on its slow JavaScript fallback; performance and backpressure behaviour are degraded');
    if (process.env.RUNNEL_REQUIRE_NATIVE_UWS === '1') assertNativeUws();
  }
  const limits = validateLimits(config.limits);
  const cfg: BrokerConfig = { ...config, limits };
  const metrics = createMetrics();
  const broker = await Broker.open(cfg, metrics);
  let ready = false;
  let port = 0;
  const app = uws.App();
  const host = cfg.host === '0.0.0.0' || cfg.host === '::' ? '127.0.0.1' : cfg.host;
  // Every WebSocket frame and HTTP route reaches the broker through this one request layer.
  const api = new RequestLayer(broker);
  const endpoint = mountWebSocket(app, { api, partitions: broker, limits, metrics, brokerUrl: () => `ws://${host}:${port}/v1/ws` });
  const http = createHttpApp({ broker: api, metrics, limits, staticDir: cfg.staticDir, isReady: () => ready, corsOrigins: config.corsOrigins });
  serveFetch(app, (req, info) => http.fetch(req, info), { maxBodyBytes: limits.maxHttpBodyBytes });

  const listenSocket = await new Promise<us_listen_socket>((resolve, reject) => {
    app.listen(cfg.host, cfg.port, (socket) => (socket ? resolve(socket) : reject(new Error(`could not listen on ${cfg.host}:${cfg.port}`))));
  }).catch(async (e: unknown) => {
    endpoint.close();
    await broker.close();
    throw e;
  });
  port = uws.us_socket_local_port(listenSocket);
  ready = true;
  log(`runnel: broker ${cfg.brokerId} listening on http://${host}:${port} (WebSocket /v1/ws), data in ${cfg.dataDir}`);

  let closing: Promise<void> | null = null;
  const close = (): Promise<void> => {
    closing ??= (async () => {
      ready = false;
      uws.us_listen_socket_close(listenSocket);
      endpoint.stopAccepting();
      await endpoint.drainInflight();
      endpoint.closeAll(GOING_AWAY, 'going away');
      endpoint.close();
      await broker.close();
    })();
    return closing;
  };
  return { port, url: `http://${host}:${port}`, broker, metrics, close };
}
