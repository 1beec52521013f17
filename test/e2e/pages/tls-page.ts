/**
 * Test page for test/e2e/sdk-tls.test.ts: `window.runnelTls` on
 * `@runnel/client` with the browser's own WebSocket, so the TLS handshake,
 * certificate check and `wss://` are Chromium's. Memory storage (the test
 * is about the transport, not persistence).
 */
import { createClient } from '@runnel/client';

export interface RoundTrip { acked: number[]; seen: number[]; state: string; errors: string[] }

export interface TlsPageApi {
  /** Produces `count` values `{ n }` to `topic` over `url`, then consumes the topic from earliest until it saw them all. */
  roundTrip(options: { url: string; topic: string; count: number; timeoutMs: number }): Promise<RoundTrip>;
  /** A bare WebSocket to `url`: 'open', or how it failed (`error` then `close <code>`). */
  probe(url: string): Promise<string>;
}

declare global {
  interface Window { runnelTls: TlsPageApi }
}

window.runnelTls = {
  async roundTrip({ url, topic, count, timeoutMs }) {
    const client = createClient({ urls: [url], clientId: 'tls-page', requestTimeoutMs: timeoutMs });
    const errors: string[] = [];
    client.on('error', (e) => errors.push(`${e.errorName}: ${e.message}`));
    try {
      const acks = await Promise.all(Array.from({ length: count }, (_, n) => client.producer.send(topic, { n })));
      const seen: number[] = [];
      const sub = client.subscribe(topic, (record) => { seen.push((record.value as { n: number }).n); }, { from: 'earliest' });
      const deadline = Date.now() + timeoutMs;
      while (seen.length < count && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      await sub.unsubscribe();
      return { acked: acks.map((a) => a.offset), seen, state: client.state, errors };
    } finally {
      await client.close();
    }
  },

  probe(url) {
    return new Promise((resolve) => {
      const events: string[] = [];
      const ws = new WebSocket(url);
      ws.onopen = () => { ws.close(); resolve('open'); };
      ws.onerror = () => events.push('error');
      ws.onclose = (event) => resolve([...events, `close ${event.code}`].join(' then '));
    });
  },
};
