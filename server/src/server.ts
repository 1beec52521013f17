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
import { join } from 'node:path';
import type { us_listen_socket } from 'uWebSockets.js';
import { fitLimitsToFdBudget, readFdLimit, reportFileHandles } from './fd-budget.ts';
import { validateLimits } from './limits.ts';
import { processFileHandleCache } from './log/file-handle-cache.ts';
import { processInlineIo } from './log/inline-io.ts';
import { createMetrics, type RunnelMetrics } from './metrics.ts';
import { createHttpApp } from './http/app.ts';
import { FileStreamStore } from './streams/file-stream-store.ts';
import { EtcdStreamStore } from './streams/etcd-stream-store.ts';
import type { StreamStore } from './streams/stream-store.ts';
import { serveFetch } from './http/uws-bridge.ts';
import { Broker, type BrokerConfig } from './broker/broker.ts';
import type { ClusterConfig } from './config.ts';
import { ClusterNode } from './replicated/cluster-node.ts';
import { isLoopbackHost, listenPolicyProblem } from './auth/listen-policy.ts';
import { loadTokenVerifier, parseAuthConfig, type AuthConfigInput } from './auth/config.ts';
import { ConfigError } from './config-error.ts';
import { AccessControl } from './request/access-control.ts';
import { OriginPolicy } from './request/origin-policy.ts';
import { QuotaPoints } from './request/quota-points.ts';
import { RequestLayer } from './request/request-layer.ts';
import type { QuotaConfigInput } from './quota/index.ts';
import { GOING_AWAY } from './session/close-codes.ts';
import { TlsServer, describeTlsIdentity, reloadAndLog, tlsWarnings, type TlsReloadResult } from './tls.ts';
import { mountWebSocket } from './session/ws-endpoint.ts';
import uws, { assertNativeUws, listenExclusive, uwsIsNative } from './broker/uws.ts';

export interface RunningServer {
  port: number;
  /** http://host:port */
  url: string;
  broker: Broker;
  metrics: RunnelMetrics;
  close(): Promise<void>;
  /** With TLS: re-validates and reloads the certificate files (SIGHUP in `runnel start`; server/src/tls.ts), logging the outcome. */
  reloadTls?: () => TlsReloadResult;
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
/** Security settings of `startServer` beyond the broker's own config (config.ts RunnelConfig has them all). */
export interface SecurityConfig {
  /** Browser origins allowed besides same-origin; default loopback origins only. */
  corsOrigins?: string[];
  /** Accept anonymous clients on a non-loopback address. */
  insecure?: boolean;
  auth?: AuthConfigInput;
  /** Rate and count quotas per subject and IP (docs/security.md); none by default. */
  quotas?: QuotaConfigInput;
  tlsCertFile?: string;
  tlsKeyFile?: string;
  /** Join the cluster in this etcd (docs/cluster.md); absent = single node. */
  cluster?: ClusterConfig;
}

export async function startServer(config: BrokerConfig & SecurityConfig, options: StartOptions = {}): Promise<RunningServer> {
  const log = options.log ?? ((line: string) => console.log(line));
  const warn = options.warn ?? ((line: string) => console.warn(line));
  if (uwsIsNative) log('runnel: uWebSockets.js: native');
  else {
    warn('runnel: WARNING: uWebSockets.js is NOT native: running on its slow JavaScript fallback; performance and backpressure behaviour are degraded');
    if (process.env.RUNNEL_REQUIRE_NATIVE_UWS === '1') assertNativeUws();
  }
  // maxConnections + maxOpenFiles + a reserve must fit `ulimit -n` (lowered to fit, said in one line).
  const fds = fitLimitsToFdBudget(validateLimits(config.limits), readFdLimit());
  const limits = fds.limits;
  (fds.isWarning ? warn : log)(fds.line);
  const cfg: BrokerConfig = { ...config, limits };
  const auth = parseAuthConfig(config.auth ?? {});
  const insecure = config.insecure ?? false;
  const refusal = listenPolicyProblem({ host: cfg.host, authMode: auth.mode, insecure });
  if (refusal) throw new ConfigError(refusal);
  if ((config.tlsCertFile === undefined) !== (config.tlsKeyFile === undefined)) throw new ConfigError('TLS needs both --tls-cert and --tls-key');
  // TLS files are validated before anything is opened; a bad pair is a ConfigError (server/src/tls.ts).
  const tlsServer = config.tlsCertFile !== undefined && config.tlsKeyFile !== undefined ? TlsServer.create({ certFile: config.tlsCertFile, keyFile: config.tlsKeyFile }) : undefined;
  const verifier = await loadTokenVerifier(auth);
  const warnings = securityWarnings(cfg.host, auth.mode, insecure, config.corsOrigins ?? []);
  const metrics = createMetrics();
  // The logs share the process-wide cache for maxOpenFiles (log-options.ts).
  const stopReportingFiles = reportFileHandles(processFileHandleCache(limits.maxOpenFiles), { metrics, warn });
  metrics.reportInlineIo(processInlineIo(limits.inlineIoMaxMs));
  const node = config.cluster
    ? await ClusterNode.open({ brokerId: cfg.brokerId, dataDir: cfg.dataDir, host: cfg.host, flushIntervalMs: cfg.flushIntervalMs, limits, cluster: config.cluster, log, warn }).catch((e: unknown) => {
      stopReportingFiles();
      throw e;
    })
    : undefined;
  const broker = await Broker.open(cfg, metrics, node ? { topics: (hooks) => node.topics(hooks), producerIds: Promise.resolve(node.producerIds), groups: (host) => node.groups(host) } : {}).catch(async (e: unknown) => {
    await node?.close();
    stopReportingFiles();
    throw e;
  });
  let ready = false;
  let port = 0;
  const tls = tlsServer !== undefined;
  const app = tlsServer?.app ?? uws.App();
  const scheme = tls ? 'https' : 'http';
  const host = cfg.host === '0.0.0.0' || cfg.host === '::' ? '127.0.0.1' : cfg.host;
  // Every WebSocket frame and HTTP route reaches the broker through this one request layer.
  const quotas = new QuotaPoints(config.quotas, limits, metrics);
  const api = new RequestLayer(broker, new AccessControl({ verifier, metrics }), quotas);
  const origins = new OriginPolicy(config.corsOrigins ?? []);
  const endpoint = mountWebSocket(app, { api, partitions: broker, limits, metrics, origins, brokerUrl: () => `${tls ? 'wss' : 'ws'}://${host}:${port}/v1/ws` });
  // Durable Streams state: the cluster's (etcd), so every broker serves every stream URL; a single node's own files.
  const streams: StreamStore = await (node ? EtcdStreamStore.open(node.store.connection, { warn }) : FileStreamStore.open(join(cfg.dataDir, 'streams'), warn)).catch(async (e: unknown) => {
    endpoint.close();
    await broker.close();
    await node?.close();
    stopReportingFiles();
    throw e;
  });
  const http = createHttpApp({
    broker: api, streams, metrics, limits, staticDir: cfg.staticDir, isReady: () => ready && !(node?.isIsolated ?? false), corsOrigins: config.corsOrigins ?? [], warnings,
    ...(node ? { clusterView: () => node.view() } : {}),
  });
  serveFetch(app, (req, info) => http.fetch(req, info), { maxBodyBytes: limits.maxHttpBodyBytes });

  const listenSocket = await new Promise<us_listen_socket>((resolve, reject) => {
    listenExclusive(app, cfg.host, cfg.port, (socket) => (socket ? resolve(socket) : reject(new Error(`could not listen on ${cfg.host}:${cfg.port} (in use by another process?)`))));
  }).catch(async (e: unknown) => {
    endpoint.close();
    await streams.close();
    await broker.close();
    await node?.close();
    stopReportingFiles();
    throw e;
  });
  port = uws.us_socket_local_port(listenSocket);
  if (node) {
    // Cut off from the cluster while clients still reach it: they are sent to another broker (replicated/isolation.ts).
    node.onIsolationChange((isolated, reason) => {
      endpoint.setServing(!isolated, 'CLUSTER_UNAVAILABLE', `broker ${cfg.brokerId} is cut off from the cluster (${reason}); use another broker`);
    });
    try {
      await node.join(`${scheme}://${host}:${port}`);
    } catch (e) {
      uws.us_listen_socket_close(listenSocket);
      endpoint.close();
      await streams.close();
      await broker.close();
      await node.close();
      stopReportingFiles();
      throw e;
    }
  }
  ready = true;
  const bound = cfg.host === '0.0.0.0' || cfg.host === '::' ? `${cfg.host} (all interfaces)` : cfg.host;
  log(`runnel: broker ${cfg.brokerId} listening on ${scheme}://${bound.includes(':') && !bound.includes(' ') ? `[${bound}]` : bound}:${port} (WebSocket /v1/ws), data in ${cfg.dataDir}`);
  if (auth.mode === 'anonymous' && !insecure) log('runnel: SECURITY: no auth configured: anonymous clients are allowed, on loopback only (configure --auth-secret, --auth-public-key or --auth-jwks to require tokens; docs/security.md)');
  else if (auth.mode === 'token') log(`runnel: SECURITY: tokens required (${[auth.hs256Secrets.length > 0 ? `${auth.hs256Secrets.length} HS256 secret(s)` : '', auth.publicKeyFiles.length > 0 ? `${auth.publicKeyFiles.length} public key(s)` : '', auth.jwksFile ? 'a JWKS file' : ''].filter(Boolean).join(', ')})`);
  for (const w of warnings) warn(`runnel: WARNING: ${w}`);
  if (tlsServer) log(`runnel: TLS: ${describeTlsIdentity(tlsServer.identity)}; SIGHUP reloads it`);
  for (const w of tlsServer ? tlsWarnings(tlsServer.identity) : []) warn(`runnel: WARNING: ${w}`);

  let closing: Promise<void> | null = null;
  const close = (): Promise<void> => {
    closing ??= (async () => {
      ready = false;
      // A cluster broker deregisters first: the controller moves its leaderships while it drains.
      await node?.leave();
      uws.us_listen_socket_close(listenSocket);
      endpoint.stopAccepting();
      await endpoint.drainInflight();
      endpoint.closeAll(GOING_AWAY, 'going away');
      endpoint.close();
      await streams.close();
      await broker.close();
      await node?.close();
      stopReportingFiles();
    })();
    return closing;
  };
  const reloadTls = tlsServer ? () => reloadAndLog(tlsServer, log, warn) : undefined;
  return { port, url: `${scheme}://${host}:${port}`, broker, metrics, close, ...(reloadTls ? { reloadTls } : {}) };
}

/** What an operator must know about this configuration (start-up lines and /readyz). */
export function securityWarnings(host: string, authMode: 'anonymous' | 'token', insecure: boolean, corsOrigins: readonly string[]): string[] {
  const out: string[] = [];
  if (authMode === 'anonymous' && insecure && !isLoopbackHost(host)) {
    out.push(`--insecure: anonymous clients on ${host} can read, write and delete every topic`);
  }
  if (corsOrigins.includes('*')) out.push("--cors-origins '*': pages of any origin may call this broker");
  return out;
}
