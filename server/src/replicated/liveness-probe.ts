/**
 * The controller's failure detector over the internal links: a broker is
 * reported down when its connection closes and the reconnect is refused
 * (a SIGKILLed process: known within one round trip, not a lease TTL), or
 * when it has not answered a heartbeat for `brokerSessionTimeoutMs` (paused
 * or partitioned). Detection decides only when the controller elects;
 * safety comes from epochs and compare-and-swap (docs/cluster.md), so a
 * false report costs a leader change, never data.
 *
 * Two refinements (pause/partition failover, issue 12 must-show 2):
 * - a watch starts each broker's silence from the last answer this broker
 *   had from it on any request (`lastAnswerMs`: the isolation monitor asks
 *   every peer several times a second), not from now, so a controller
 *   elected after the old one went silent reports a paused broker at once
 *   instead of one more session timeout later; never from before the
 *   broker's registration started (a restarted broker starts afresh);
 * - when every other broker (two or more) is silent at once, the controller
 *   is the one cut off: it reports `cutOff` instead of sending each of them
 *   down (revoking live brokers' leases and emptying ISRs it cannot see).
 */
import type { BrokerEndpoint } from '../cluster/cluster-state.ts';
import type { LivenessProbe } from '../cluster/controller.ts';

export interface ProbeLinks {
  heartbeat(brokerId: number, timeoutMs: number, signal?: AbortSignal): Promise<{ roundTripMs: number }>;
  onPeerDown(listener: (brokerId: number, reason: 'closed' | 'refused' | 'timeout') => void): () => void;
  /** When `brokerId` last answered any request of this broker (Date.now() ms), if it ever did. */
  lastAnswerMs?(brokerId: number): number | undefined;
}

export interface LivenessLimits {
  /** Period of the controller's heartbeats to every broker. */
  controllerHeartbeatMs: number;
  /** No heartbeat answered for this long: the broker is reported down. Too low flaps leadership on a loaded machine; too high slows failover of a paused broker. */
  brokerSessionTimeoutMs: number;
}

export class HeartbeatProbe implements LivenessProbe {
  constructor(private readonly links: ProbeLinks, private readonly limits: LivenessLimits) {}

  watch(brokers: BrokerEndpoint[], onDown: (brokerId: number, reason: string) => void, onCutOff?: (reason: string) => void): () => void {
    const startMs = Date.now();
    const since = (b: BrokerEndpoint) => Math.min(startMs, Math.max(this.links.lastAnswerMs?.(b.id) ?? startMs, b.startedAtMs));
    const watched = new Map(brokers.map((b) => [b.id, { lastAnswerMs: since(b), answered: false, reported: false, inflight: false }]));
    const abort = new AbortController();
    let cutOff = false;
    const report = (id: number, reason: string) => {
      const w = watched.get(id);
      if (!w || w.reported || cutOff || abort.signal.aborted) return;
      // Every other broker silent too (none answered within half a session): this side is cut off, not all of them
      // dead. NB: also for a refused connect (a partition may answer with resets); one broker killed while another
      // answers is reported at once.
      const nowMs = Date.now();
      if (onCutOff && watched.size >= 2 && [...watched.values()].every((o) => o === w || nowMs - o.lastAnswerMs >= this.limits.brokerSessionTimeoutMs / 2)) {
        cutOff = true;
        onCutOff(`no broker of ${[...watched.keys()].join(', ')} answered heartbeats for ${this.limits.brokerSessionTimeoutMs / 2} ms or more`);
        return;
      }
      w.reported = true;
      onDown(id, reason);
    };
    const beat = (id: number) => {
      const w = watched.get(id);
      if (!w || w.inflight || w.reported || abort.signal.aborted) return;
      w.inflight = true;
      // Until it answered in this watch, a heartbeat waits only for what is left of the session since the last
      // answer (a broker silent since before the watch is judged at once); then each waits a whole session.
      const session = this.limits.brokerSessionTimeoutMs;
      const timeoutMs = w.answered ? session : Math.min(session, Math.max(this.limits.controllerHeartbeatMs, session - (Date.now() - w.lastAnswerMs)));
      this.links.heartbeat(id, timeoutMs, abort.signal).then(
        () => { w.lastAnswerMs = Date.now(); w.answered = true; },
        () => undefined,
      ).finally(() => {
        w.inflight = false;
        check(id);
      });
    };
    const offDown = this.links.onPeerDown((id, reason) => {
      // A refused connect means nothing listens there any more; a closed one may be a restart: beat again at once.
      if (reason === 'refused') report(id, 'connection refused');
      else beat(id);
    });
    // NB: judged when a heartbeat settles, not while one is in flight (it may still be answered: a link redialling
    // a restarted broker).
    const check = (id: number) => {
      const w = watched.get(id);
      if (w && Date.now() - w.lastAnswerMs >= this.limits.brokerSessionTimeoutMs) report(id, `no heartbeat answered for ${Date.now() - w.lastAnswerMs} ms`);
    };
    const timer = setInterval(() => { for (const id of watched.keys()) beat(id); }, this.limits.controllerHeartbeatMs);
    timer.unref?.();
    for (const id of watched.keys()) beat(id);
    return () => {
      abort.abort();
      clearInterval(timer);
      offDown();
    };
  }
}
