/**
 * The host's ticket book: bounded, every ticket due by its deadline, and
 * released on every path (settled and claimed, expired, cancelled, owner
 * released). Time is node:test's mock clock, so deadlines are exact.
 */
import { test, mock } from 'node:test';
import assert from 'node:assert/strict';
import { RunnelError } from '@runnel/client';
import { defaultHostLimits, validateHostLimits } from './limits.ts';
import { Tickets } from './tickets.ts';

function deferred<T>(): { promise: Promise<T>; resolve(v: T): void; reject(e: unknown): void } {
  let resolve!: (v: T) => void, reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => { resolve = res; reject = rej; });
  return { promise, resolve, reject };
}
const flush = (): Promise<void> => new Promise((r) => setImmediate(r));
const isCoded = (name: string, retryable?: boolean) => (e: any) => e?.name === 'RunnelError' && e.errorName === name && (retryable === undefined || e.retryable === retryable);

test('limits: defaults validate; nonsense is refused with a coded error naming the limit', () => {
  assert.deepEqual(validateHostLimits(), defaultHostLimits);
  assert.throws(() => validateHostLimits({ maxPendingTickets: 0 }), (e: any) => isCoded('INVALID_REQUEST')(e) && /maxPendingTickets/.test(e.message));
  assert.throws(() => validateHostLimits({ ticketTimeoutMs: 2 ** 31 }), (e: any) => isCoded('INVALID_REQUEST')(e) && /ticketTimeoutMs/.test(e.message));
  assert.throws(() => validateHostLimits({ ticketTimeoutMs: Number.NaN }), isCoded('INVALID_REQUEST'));
});

test('bound: past maxPendingTickets issue refuses LIMIT_EXCEEDED (retryable); settled and claimed tickets make room', async () => {
  const tickets = new Tickets<number>({ maxPendingTickets: 2, ticketTimeoutMs: 60_000 });
  const [a, b] = [deferred<number>(), deferred<number>()];
  const ta = tickets.issue(a.promise);
  const tb = tickets.issue(b.promise);
  assert.throws(() => tickets.ensureRoom(), isCoded('LIMIT_EXCEEDED', true));
  assert.throws(() => tickets.issue(Promise.resolve(3)), isCoded('LIMIT_EXCEEDED', true));
  a.resolve(1);
  await flush();
  assert.equal(tickets.size, 2, 'settled but not yet claimed: still held for its tab');
  assert.equal(await tickets.claim(ta), 1);
  assert.equal(tickets.size, 1, 'settled and claimed: released');
  const claimB = tickets.claim(tb);
  b.reject(new Error('produce failed'));
  await assert.rejects(claimB, /produce failed/);
  assert.equal(tickets.size, 0, 'a rejected outcome releases its ticket too');
  await assert.rejects(tickets.claim(ta), isCoded('INVALID_REQUEST'), 'a ticket is claimed once');
  tickets.issue(Promise.resolve(4));
  assert.equal(tickets.size, 1);
});

test('deadline: an unsettled ticket expires after ticketTimeoutMs; its claim rejects REQUEST_TIMED_OUT and it leaves the book', async () => {
  mock.timers.enable({ apis: ['setTimeout'] });
  try {
    const tickets = new Tickets<number>({ maxPendingTickets: 1, ticketTimeoutMs: 1000 });
    const never = new Promise<number>(() => {});
    const claimed = tickets.claim(tickets.issue(never));
    let outcome: unknown = 'pending';
    claimed.then((v) => { outcome = v; }, (e) => { outcome = e; });
    mock.timers.tick(999);
    await flush();
    assert.equal(outcome, 'pending', 'not before its deadline');
    assert.equal(tickets.size, 1);
    mock.timers.tick(1);
    await flush();
    assert.ok(isCoded('REQUEST_TIMED_OUT', true)(outcome), `rejected with ${String(outcome)}`);
    assert.equal(tickets.size, 0, 'expired tickets leave the book');
    const unclaimed = tickets.issue(never);
    mock.timers.tick(1000);
    await assert.rejects(tickets.claim(unclaimed), isCoded('INVALID_REQUEST'), 'an unclaimed ticket expires too');
    assert.equal(tickets.size, 0);
  } finally {
    mock.timers.reset();
  }
});

test('release: the tickets of one owner (a closed port) are dropped and their claims rejected; others stay', async () => {
  const tickets = new Tickets<number>({ maxPendingTickets: 10, ticketTimeoutMs: 60_000 });
  const portA = {}, portB = {};
  const never = new Promise<number>(() => {});
  const a1 = tickets.claim(tickets.issue(never, portA));
  tickets.issue(never, portA);
  const b1 = tickets.issue(Promise.resolve(7), portB);
  tickets.release(portA, new RunnelError('ABORTED', 'port closed'));
  await assert.rejects(a1, isCoded('ABORTED'));
  assert.equal(tickets.size, 1);
  assert.equal(await tickets.claim(b1), 7);
  const c = tickets.issue(never);
  tickets.cancel(c);
  assert.equal(tickets.size, 0, 'a cancelled ticket leaves the book');
});
