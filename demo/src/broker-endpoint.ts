/**
 * Where the broker is: the demo is given an HTTP base URL (the page's origin,
 * or `--url` for the traffic generator) and derives the WebSocket endpoint
 * `/v1/ws` from it (http → ws, https → wss).
 */
export interface BrokerEndpoint {
  /** Base HTTP URL without trailing slash, e.g. `http://localhost:8080`. */
  httpUrl: string;
  /** The protocol endpoint, e.g. `ws://localhost:8080/v1/ws`. */
  webSocketUrl: string;
}

export const WEBSOCKET_PATH = '/v1/ws';

export function brokerEndpoint(url: string): BrokerEndpoint {
  const parsed = new URL(url);
  if (parsed.protocol === 'ws:' || parsed.protocol === 'wss:') {
    parsed.protocol = parsed.protocol === 'ws:' ? 'http:' : 'https:';
  } else if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    throw new Error(`broker URL must be http(s) or ws(s), got "${url}"`);
  }
  const httpUrl = parsed.origin;
  const webSocketUrl = `${parsed.protocol === 'https:' ? 'wss:' : 'ws:'}//${parsed.host}${WEBSOCKET_PATH}`;
  return { httpUrl, webSocketUrl };
}
