/**
 * The worker host's own limits (the shared client's are @runnel/client's
 * ClientLimits, passed as `SharedClientOptions.limits`), named, with defaults
 * and what they bound; `validateHostLimits()` runs when a host is created.
 */
import { RunnelError } from '@runnel/client';

export interface HostLimits {
  /**
   * Tickets the host holds for all tabs: a send's acknowledgment from the moment its record is queued until
   * the tab collects it with `ack` (or its deadline). Over it `send` refuses LIMIT_EXCEEDED (retryable) before
   * queuing. The default equals the client's default maxOutboxRecords, so with default limits the outbox
   * refuses first; too low throttles tabs that send in bursts, too high lets tabs that never call `ack`
   * (a dead tab, a misbehaving caller) pin memory.
   */
  maxPendingTickets: number;
  /**
   * A ticket not settled and collected this long after its send is dropped: a waiting `ack` rejects
   * REQUEST_TIMED_OUT (retryable). The record itself stays in the outbox and is still sent, so treat the
   * timeout as "unknown", not "lost". Kafka's delivery.timeout.ms default; must stay above the client's
   * requestTimeoutMs (30 s) plus a few retries, or sends time out while their produce is still answered.
   */
  ticketTimeoutMs: number;
}

export const defaultHostLimits: HostLimits = { maxPendingTickets: 100_000, ticketTimeoutMs: 120_000 };

/** Largest delay timers honour: browsers and Node fire a longer setTimeout at once. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** Merges `input` over the defaults and rejects values that cannot work (INVALID_REQUEST naming the fix). */
export function validateHostLimits(input: Partial<HostLimits> = {}): HostLimits {
  const limits = { ...defaultHostLimits, ...input };
  const problems: string[] = [];
  if (!(Number.isInteger(limits.maxPendingTickets) && limits.maxPendingTickets >= 1)) problems.push(`maxPendingTickets must be an integer >= 1, got ${limits.maxPendingTickets}`);
  if (!(limits.ticketTimeoutMs >= 1 && limits.ticketTimeoutMs <= MAX_TIMER_MS)) problems.push(`ticketTimeoutMs must be in 1..${MAX_TIMER_MS}, got ${limits.ticketTimeoutMs}`);
  if (problems.length > 0) throw new RunnelError('INVALID_REQUEST', `worker host: ${problems.join('; ')}`);
  return limits;
}
