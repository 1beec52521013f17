/**
 * The controller's failure detector over the internal links: a broker is
 * reported down when its connection closes and the reconnect is refused
 * (a SIGKILLed process: known within one round trip, not a lease TTL), or
 * when it has not answered a heartbeat for `brokerSessionTimeoutMs` (paused
 * or partitioned). Detection decides only when the controller elects;
 * safety comes from epochs and compare-and-swap (docs/cluster.md), so a
 * false report costs a leader change, never data.
 */
import type { BrokerEndpoint } from '../cluster/cluster-state.ts';
import type { LivenessProbe } from '../cluster/controller.ts';

export interface ProbeLinks {
  heartbeat(brokerId: number, timeoutMs: number, signal?: AbortSignal): Promise<{ roundTripMs: number }>;
  onPeerDown(listener: (brokerId: number, reason: 'closed' | 'refused' | 'timeout') => void): () => void;
}

export interface LivenessLimits {
  /** Period of the controller's heartbeats to every broker. */
  controllerHeartbeatMs: number;
  /** No heartbeat answered for this long: the broker is reported down. Too low flaps leadership on a loaded machine; too high slows failover of a paused broker. */
  brokerSessionTimeoutMs: number;
}

export class HeartbeatProbe implements LivenessProbe {
  constructor(private readonly links: ProbeLinks, private readonly limits: LivenessLimits) {}

  watch(brokers: BrokerEndpoint[], onDown: (brokerId: number, reason: string) => void): () => void {
    const watched = new Map(brokers.map((b) => [b.id, { lastAnswerMs: Date.now(), reported: false, inflight: false }]));
    const abort = new AbortController();
    const report = (id: number, reason: string) => {
      const w = watched.get(id);
      if (!w || w.reported || abort.signal.aborted) return;
      w.reported = true;
      onDown(id, reason);
    };
    const beat = (id: number) => {
      const w = watched.get(id);
      if (!w || w.inflight || w.reported || abort.signal.aborted) return;
      w.inflight = true;
      this.links.heartbeat(id, this.limits.brokerSessionTimeoutMs, abort.signal).then(
        () => { w.lastAnswerMs = Date.now(); },
        () => undefined,
      ).finally(() => {
        w.inflight = false;
        if (Date.now() - w.lastAnswerMs >= this.limits.brokerSessionTimeoutMs) report(id, `no heartbeat answered for ${Date.now() - w.lastAnswerMs} ms`);
      });
    };
    const offDown = this.links.onPeerDown((id, reason) => {
      // A refused connect means nothing listens there any more; a closed one may be a restart: beat again at once.
      if (reason === 'refused') report(id, 'connection refused');
      else beat(id);
    });
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
