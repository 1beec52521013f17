/**
 * The start-up rule of ARCHITECTURE.md "Security": without auth a broker
 * may listen on loopback only; any other address needs auth (mode
 * `token`) or an explicit `--insecure`. Pure; the start command calls it
 * before listening and fails start-up with the message it returns.
 */

/**
 * Whether `host` names a loopback interface: `localhost`, 127.0.0.0/8, `::1` (bracketed or not), `::ffff:127.x.y.z`.
 * NB: not `*.localhost` (RFC 6761): whether those resolve to loopback depends on the resolver.
 */
export function isLoopbackHost(host: string): boolean {
  const h = host.trim().toLowerCase().replace(/^\[(.*)\]$/, '$1');
  if (h === 'localhost' || h === '::1' || h === '0:0:0:0:0:0:0:1') return true;
  const v4 = h.startsWith('::ffff:') ? h.slice(7) : h;
  const octets = v4.split('.');
  return octets.length === 4 && octets[0] === '127' && octets.every((o) => /^\d{1,3}$/.test(o) && Number(o) <= 255);
}

export interface ListenPolicyInput {
  host: string;
  authMode: 'anonymous' | 'token';
  /** `--insecure`: the operator accepts anonymous access from the network. */
  insecure: boolean;
}

/** Null when the broker may listen as configured, else the operator message for the refusal. */
export function listenPolicyProblem({ host, authMode, insecure }: ListenPolicyInput): string | null {
  if (authMode === 'token' || insecure || isLoopbackHost(host)) return null;
  return `refusing to listen on ${host} without auth: anyone who can reach it could read and write every topic. `
    + 'Configure auth (auth.mode "token" with keys, docs/security.md), listen on 127.0.0.1, or pass --insecure to accept anonymous access';
}
