/** What a session needs from its socket (a uWS WebSocket in production, uws-session-socket.ts; a fake in session tests). */
export interface SessionSocket {
  /** uWS semantics: 1 sent, 0 buffered (backpressure), 2 dropped. */
  send(bytes: Uint8Array): number;
  getBufferedAmount(): number;
  subscribe(channel: string): void;
  unsubscribe(channel: string): void;
  /** Graceful close; calls the session's `handleClose` synchronously. */
  end(code: number, reason: string): void;
}
