/**
 * A uWS WebSocket seen as a Session's socket (`SessionSocket`).
 *
 * Why this is more than a pass-through: uWS buffers small `app.publish`
 * messages per subscriber and delivers them at the end of the event-loop
 * iteration (or before that socket's next `send`). When a socket
 * unsubscribes from its LAST topic, uWS frees its subscriber together with
 * those undelivered messages. Fan-out publishes several batches in one
 * synchronous block (one fdatasync makes many visible) and may take a
 * subscriber off its channel between them (out of credit or room), so the
 * frames it was charged credit for would be silently dropped: the client
 * never grants that credit back and the subscription stalls for good.
 *
 * Invariant: from open to close the socket stays subscribed to
 * `SESSION_TOPIC` (never published to), so uWS never frees its subscriber
 * and every frame published while it was on a channel is delivered, in
 * order, before anything sent after it (uWS drains a subscriber before a
 * direct `send`).
 */
import type { WebSocket } from 'uWebSockets.js';
import type { SessionSocket } from './session-socket.ts';

/** Held by every open socket; nothing is ever published to it. Cannot collide with `<topicId>/<partition>` channels. */
export const SESSION_TOPIC = 'runnel:session';

export function uwsSessionSocket<U>(ws: WebSocket<U>): SessionSocket {
  ws.subscribe(SESSION_TOPIC);
  return {
    send: (bytes) => ws.send(bytes, true, false),
    getBufferedAmount: () => ws.getBufferedAmount(),
    subscribe: (channel) => void ws.subscribe(channel),
    unsubscribe: (channel) => void ws.unsubscribe(channel),
    end: (code, reason) => ws.end(code, reason),
  };
}
