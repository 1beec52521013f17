/**
 * One TCP connection of the internal protocol, either side: bytes in →
 * typed frames out (protocol.ts), frames out as ONE corked write each (the
 * parts of a fetch answer go out with writev, the batch bytes uncopied).
 *
 * Invariant: the close listener runs exactly once, whatever ended the
 * connection (peer close, socket error, a bad frame, `close()`); no frame is
 * delivered after it.
 */
import type { Socket } from 'node:net';
import { RunnelError } from '@runnel/client/codec';
import { decodeFrame, encodeFrame, FrameReader, type ReplicationFrame } from './protocol.ts';

export interface FrameSocketEvents {
  frame(frame: ReplicationFrame): void;
  /** `error`: why it closed when not by `close()` or an orderly peer close (a socket error, or INVALID_FRAME / MESSAGE_TOO_LARGE from the peer). */
  close(error: Error | null): void;
}

export class FrameSocket {
  readonly #socket: Socket;
  readonly #reader: FrameReader;
  readonly #events: FrameSocketEvents;
  #isClosed = false;
  #isPaused = false;

  constructor(socket: Socket, maxFrameBytes: number, events: FrameSocketEvents) {
    this.#socket = socket;
    this.#reader = new FrameReader(maxFrameBytes);
    this.#events = events;
    socket.setNoDelay(true);
    // Plain Uint8Array views of the received Buffers (no copy): what the frames carry is ordinary bytes.
    socket.on('data', (chunk: Buffer) => this.#onData(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength)));
    socket.on('error', (err) => this.#end(err));
    socket.on('close', () => this.#end(null));
  }

  get isClosed(): boolean {
    return this.#isClosed;
  }

  /** Bytes queued for the socket and not yet handed to the kernel. */
  get bufferedBytes(): number {
    return this.#socket.writableLength;
  }

  get remoteAddress(): string {
    return `${this.#socket.remoteAddress}:${this.#socket.remotePort}`;
  }

  /** Writes one frame (one corked write). Returns false when the connection is closed (nothing sent). */
  send(frame: ReplicationFrame): boolean {
    if (this.#isClosed) return false;
    const parts = encodeFrame(frame);
    const socket = this.#socket;
    if (parts.length === 1) {
      socket.write(parts[0]);
      return true;
    }
    socket.cork();
    for (const p of parts) socket.write(p);
    socket.uncork();
    return true;
  }

  /** Stops reading (backpressure to the peer) until `resume`. Returns false when it already was paused (or closed). */
  pause(): boolean {
    if (this.#isPaused || this.#isClosed) return false;
    this.#isPaused = true;
    this.#socket.pause();
    return true;
  }

  resume(): void {
    if (!this.#isPaused || this.#isClosed) return;
    this.#isPaused = false;
    this.#socket.resume();
    // Frames already buffered by the reader were not delivered while paused.
    this.#drainReader();
  }

  /** Calls `listener` once when the socket's write buffer empties. */
  onceDrained(listener: () => void): void {
    this.#socket.once('drain', listener);
  }

  /** Closes the connection now (pending writes are dropped). */
  close(error: Error | null = null): void {
    this.#end(error);
  }

  #onData(chunk: Uint8Array): void {
    if (this.#isClosed) return;
    this.#reader.push(chunk);
    this.#drainReader();
  }

  #drainReader(): void {
    while (!this.#isClosed && !this.#isPaused) {
      const raw = this.#reader.next();
      if (raw === null) return;
      if (!raw.ok) {
        this.#end(new RunnelError(raw.code, `from ${this.remoteAddress}: ${raw.message}`));
        return;
      }
      const frame = decodeFrame(raw.value);
      if (!frame.ok) {
        this.#end(new RunnelError(frame.code, `from ${this.remoteAddress}: ${frame.message}`));
        return;
      }
      this.#events.frame(frame.value);
    }
  }

  #end(error: Error | null): void {
    if (this.#isClosed) return;
    this.#isClosed = true;
    this.#socket.destroy();
    this.#events.close(error);
  }
}
