/**
 * Tickets: the acknowledgments the worker host holds for tabs. `send` queues
 * a record and returns a ticket; the tab's `ack(ticket)` collects the
 * outcome (two calls, so `queued` and the ack resolve separately across
 * comlink). Bounded (`maxPendingTickets`: `issue` refuses LIMIT_EXCEEDED) and
 * each ticket has a deadline (`ticketTimeoutMs` from its issue: a waiting
 * claim rejects REQUEST_TIMED_OUT, retryable).
 *
 * Invariant: a ticket leaves the book exactly once, and its timer is cleared
 * then: settled and claimed, expired, cancelled (its record was never
 * queued), or released with its owner (the tab's port closed).
 */
import { RunnelError } from '@runnel/client';
import type { HostLimits } from './limits.ts';

interface Ticket<T> {
  /** The outcome as the claimer sees it: the send's result, or the deadline's/release's rejection. */
  readonly result: Promise<T>;
  readonly fail: (error: unknown) => void;
  readonly timer: ReturnType<typeof setTimeout>;
  readonly owner: object | undefined;
  settled: boolean;
  claimed: boolean;
}

export class Tickets<T> {
  readonly #book = new Map<number, Ticket<T>>();
  #nextId = 1;

  constructor(private readonly limits: HostLimits) {}

  /** Tickets held (pending or settled and not yet claimed). */
  get size(): number {
    return this.#book.size;
  }

  /** Throws LIMIT_EXCEEDED (retryable) when the book is full; call before starting the work a ticket is for. */
  ensureRoom(): void {
    if (this.#book.size >= this.limits.maxPendingTickets) {
      throw new RunnelError('LIMIT_EXCEEDED', `the worker host holds ${this.#book.size} unacknowledged sends (maxPendingTickets); retry once acks arrive`);
    }
  }

  /** A ticket for `outcome`, due within ticketTimeoutMs; `owner` = the port it came through (see `release`). */
  issue(outcome: Promise<T>, owner?: object): number {
    this.ensureRoom();
    const id = this.#nextId++;
    let succeed!: (value: T) => void, fail!: (error: unknown) => void;
    const result = new Promise<T>((resolve, reject) => { succeed = resolve; fail = reject; });
    result.catch(() => {}); // NB: an outcome nobody claims is not an unhandled rejection
    const timer = setTimeout(() => this.#expire(id), this.limits.ticketTimeoutMs);
    const ticket: Ticket<T> = { result, fail, timer, owner, settled: false, claimed: false };
    this.#book.set(id, ticket);
    const settle = (): void => { ticket.settled = true; this.#maybeDrop(id, ticket); };
    outcome.then((value) => { succeed(value); settle(); }, (error) => { fail(error); settle(); });
    return id;
  }

  /** The outcome of ticket `id`, once: REQUEST_TIMED_OUT at its deadline; INVALID_REQUEST if unknown or already claimed. */
  claim(id: number): Promise<T> {
    const ticket = this.#book.get(id);
    if (!ticket || ticket.claimed) return Promise.reject(new RunnelError('INVALID_REQUEST', `unknown ticket ${id}`));
    ticket.claimed = true;
    this.#maybeDrop(id, ticket);
    return ticket.result;
  }

  /** Drops a ticket whose work never started (its record was not queued); nobody claims it. */
  cancel(id: number): void {
    const ticket = this.#book.get(id);
    if (ticket) this.#drop(id, ticket);
  }

  /** Drops every ticket of `owner` (undefined: all); their waiting claims reject with `error`. */
  release(owner: object | undefined, error: RunnelError): void {
    for (const [id, ticket] of this.#book) {
      if (owner !== undefined && ticket.owner !== owner) continue;
      this.#drop(id, ticket);
      ticket.fail(error);
    }
  }

  #maybeDrop(id: number, ticket: Ticket<T>): void {
    if (ticket.settled && ticket.claimed && this.#book.get(id) === ticket) this.#drop(id, ticket);
  }

  #drop(id: number, ticket: Ticket<T>): void {
    clearTimeout(ticket.timer);
    this.#book.delete(id);
  }

  #expire(id: number): void {
    const ticket = this.#book.get(id);
    if (!ticket) return;
    this.#book.delete(id);
    ticket.fail(new RunnelError('REQUEST_TIMED_OUT', `no acknowledgment within ${this.limits.ticketTimeoutMs} ms (ticketTimeoutMs); the record stays in the outbox and may still be written, so a resend may write it twice`));
  }
}
