/**
 * Fetches what the Cluster panel shows: `GET /v1/cluster` from the broker
 * that served the page, then the same from each other registered broker
 * (their own answers carry the lag of the followers they lead). Peers are
 * asked in parallel, each with a deadline, so one hung broker delays a poll
 * by at most `peerTimeoutMs` and shows as unreachable.
 *
 * NB: a peer is another origin (another port): it answers this page when its
 * CORS policy allows the page's origin (loopback origins by default, or
 * --cors-origins), and a token in a cookie does not travel to it.
 */
import { ClusterViewJson, type PolledViews } from './cluster-overview.ts';

export const clusterPollerLimits = {
  /** Other brokers asked per poll (the lowest ids); the rest show without follower lag. */
  maxPeers: 8,
  /** How long one broker's answer is awaited. */
  peerTimeoutMs: 1500,
  /** Largest answer read, in characters: a bound on what one poll parses. */
  maxAnswerChars: 8 * 1024 * 1024,
};

export interface ClusterPollerOptions {
  /** The page's broker, e.g. `location.origin`. */
  baseUrl: string;
  fetch?: typeof fetch;
  limits?: typeof clusterPollerLimits;
}

export class ClusterPoller {
  private readonly fetch: typeof fetch;
  private readonly limits: typeof clusterPollerLimits;

  constructor(private readonly options: ClusterPollerOptions) {
    this.fetch = options.fetch ?? globalThis.fetch.bind(globalThis);
    this.limits = options.limits ?? clusterPollerLimits;
  }

  /** Rejects when the page's own broker does not answer (the panel says so); a peer's failure is part of the result. */
  async poll(): Promise<PolledViews> {
    const self = await this.read(this.options.baseUrl);
    const peers = self.brokers
      .filter((b) => b.id !== self.brokerId && b.clientUrl !== '')
      .sort((a, b) => a.id - b.id)
      .slice(0, this.limits.maxPeers);
    const answers = await Promise.all(peers.map(async (b): Promise<[number, ClusterViewJson | { error: string }]> => {
      try {
        return [b.id, await this.read(b.clientUrl)];
      } catch (error) {
        return [b.id, { error: (error as Error).message }];
      }
    }));
    return { self, peers: new Map(answers) };
  }

  private async read(baseUrl: string): Promise<ClusterViewJson> {
    const url = `${baseUrl.replace(/\/+$/, '')}/v1/cluster`;
    // NB: a timer of our own rather than AbortSignal.timeout(), which Node leaves unref'd (a poll from Node could outlive its process).
    const deadline = new AbortController();
    const timer = setTimeout(() => deadline.abort(new Error(`${url}: no answer within ${this.limits.peerTimeoutMs} ms (timeout)`)), this.limits.peerTimeoutMs);
    let res: Response, text: string;
    try {
      res = await this.fetch(url, { signal: deadline.signal, headers: { accept: 'application/json' } });
      text = await res.text();
    } finally {
      clearTimeout(timer);
    }
    if (!res.ok) throw new Error(`${url} answered ${res.status}: ${text.slice(0, 200)}`);
    if (text.length > this.limits.maxAnswerChars) throw new Error(`${url} answered ${text.length} characters, more than ${this.limits.maxAnswerChars}`);
    const parsed = ClusterViewJson.safeParse(JSON.parse(text));
    if (!parsed.success) throw new Error(`${url}: not a cluster view (${parsed.error.issues[0]?.message ?? 'invalid'})`);
    return parsed.data;
  }
}
