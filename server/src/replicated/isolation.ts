/**
 * Whether this broker is cut off from the cluster while clients can still
 * reach it (sans-IO: observations in, a verdict out). A cut-off broker's
 * leaderships have moved (or will: its lease expires) but it cannot learn
 * that, so clients connected to it would wait on produces that can never be
 * acknowledged. Isolated, it closes their connections and refuses new ones
 * (CLUSTER_UNAVAILABLE, retryable) so the SDK moves to another broker at
 * once; it serves again as soon as it is back.
 *
 * Isolated when either:
 * - etcd has been unreachable for a lease TTL while a broker it can reach
 *   does reach etcd (only this broker is cut off from etcd): that broker's
 *   last etcd answer came more than `witnessMarginMs` (the probe interval)
 *   after this broker's own. A peer that merely still counts etcd as fresh
 *   is no witness: when etcd goes down for everyone, the broker that last
 *   heard it a moment before the others would otherwise send every other
 *   broker's clients to itself (fault seed 14054: clients moved onto the
 *   one broker that was then paused), or
 * - etcd is reachable, other brokers are registered there (alive), and none
 *   of them has answered for `peerSilenceMs` (cut off from the brokers), or
 * - etcd is reachable, the cluster deposed this broker (its registration was
 *   revoked: the controller judged it down) within the last `etcdSilenceMs`,
 *   and no peer has answered for half of `peerSilenceMs`: the verdict of the
 *   rest of the cluster, a second before this broker's own silence rule.
 *   A deposed broker that peers still answer (a false report under load) is
 *   not isolated.
 * Not isolated when nothing at all is reachable (etcd down for everyone or a
 * broker alone): existing leaders keep serving what they can do safely, and
 * safety never depends on this verdict (epochs and compare-and-swap do).
 */

export interface PeerObservation {
  id: number;
  /** Answered a status request recently. */
  reachable: boolean;
  /** What it said about etcd in its last answer (null: never answered). */
  seesEtcd: boolean | null;
  /** How long ago it last answered (omitted or null: never). */
  silentMs?: number | null;
  /** When (this broker's clock) it last had an answer from etcd, as its last answer said; omitted or null: unknown. */
  etcdContactAtMs?: number | null;
}

export interface IsolationInput {
  nowMs: number;
  /** When an etcd request last succeeded (probes run every second or so). */
  etcdLastContactMs: number;
  /** Other brokers registered in etcd (as last known). */
  peers: PeerObservation[];
  /** When this broker's registration was last revoked by another (the controller judged it down); null: never. */
  deposedAtMs?: number | null;
}

export interface IsolationVerdict {
  isolated: boolean;
  /** Why, for the log line and the close reason. */
  reason: string;
}

export interface IsolationLimits {
  /** No etcd contact for this long (a lease TTL: the registration is gone by then) = etcd unreachable. */
  etcdSilenceMs: number;
  /** No registered peer answered for this long before the second rule applies. */
  peerSilenceMs: number;
  /** A witness must have heard etcd this much later than this broker last did (≥ the etcd probe interval). */
  witnessMarginMs: number;
}

export class IsolationDetector {
  private peersSilentSinceMs: number | null = null;

  constructor(private readonly limits: IsolationLimits) {}

  observe(input: IsolationInput): IsolationVerdict {
    const { nowMs, etcdLastContactMs, peers } = input;
    const etcdSilentMs = nowMs - etcdLastContactMs;
    const etcdConnected = etcdSilentMs < this.limits.etcdSilenceMs;
    const anyReachable = peers.some((p) => p.reachable);
    this.peersSilentSinceMs = peers.length === 0 || anyReachable ? null : (this.peersSilentSinceMs ?? nowMs);
    if (!etcdConnected) {
      const witness = peers.find((p) => p.reachable && p.seesEtcd === true
        && (p.etcdContactAtMs == null || p.etcdContactAtMs > etcdLastContactMs + this.limits.witnessMarginMs));
      if (witness) return { isolated: true, reason: `no answer from etcd for ${etcdSilentMs} ms while broker ${witness.id} reaches it` };
    }
    const deposedAt = input.deposedAtMs ?? null;
    if (etcdConnected && deposedAt !== null && nowMs - deposedAt < this.limits.etcdSilenceMs && peers.length > 0
      && peers.every((p) => p.silentMs == null || p.silentMs >= this.limits.peerSilenceMs / 2)) {
      return { isolated: true, reason: `deposed by the cluster ${nowMs - deposedAt} ms ago and no broker of ${peers.map((p) => p.id).join(', ')} answered for ${this.limits.peerSilenceMs / 2} ms` };
    }
    if (etcdConnected && this.peersSilentSinceMs !== null && nowMs - this.peersSilentSinceMs >= this.limits.peerSilenceMs) {
      return { isolated: true, reason: `no broker of ${peers.map((p) => p.id).join(', ')} (registered in etcd) answered for ${nowMs - this.peersSilentSinceMs} ms` };
    }
    return { isolated: false, reason: '' };
  }
}

/** A peer's last answer to `status`, in this broker's clock. */
export interface PeerAnswer { atMs: number; seesEtcd: boolean; etcdContactAtMs: number | null }

/**
 * The peers the detector weighs: every registered broker except those whose host refuses the dial (nothing
 * listens: SIGKILLed, stopped — dead, not out of reach: its registration lingers until its lease expires, and a
 * broker that outlived two of three peers is not cut off), plus any broker that answered within `answerFreshMs`
 * though it is not registered right now (its registration was revoked a moment ago, as this broker's may have
 * been): it is alive, so it can only keep this broker serving. Fault seed 14011: a controller cut off from its
 * peers revoked brokers 1 and 3; broker 3, deposed, weighed only broker 2 (the cut-off one) and sent its clients
 * away while broker 1 still answered it.
 */
export function peerObservations(input: {
  nowMs: number; registered: readonly number[]; answers: ReadonlyMap<number, PeerAnswer>;
  refusesDial: (id: number) => boolean; answerFreshMs: number;
}): PeerObservation[] {
  const { nowMs, registered, answers, answerFreshMs } = input;
  const peers: PeerObservation[] = [];
  for (const id of registered) {
    if (input.refusesDial(id)) continue;
    const last = answers.get(id);
    peers.push({
      id, reachable: last !== undefined && nowMs - last.atMs <= answerFreshMs, seesEtcd: last?.seesEtcd ?? null,
      silentMs: last === undefined ? null : nowMs - last.atMs, etcdContactAtMs: last?.etcdContactAtMs ?? null,
    });
  }
  for (const [id, last] of answers) {
    if (registered.includes(id) || input.refusesDial(id) || nowMs - last.atMs > answerFreshMs) continue;
    peers.push({ id, reachable: true, seesEtcd: last.seesEtcd, silentMs: nowMs - last.atMs, etcdContactAtMs: last.etcdContactAtMs });
  }
  return peers;
}
