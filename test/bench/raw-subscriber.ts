/**
 * A bare-protocol subscriber connection for benchmarks (raw-ws-reader.ts
 * underneath): hello sent, pings answered, a broker ERROR thrown, and credit
 * granted back every GRANT_EVERY_BYTES of received records, so the caller
 * only writes its subscribe frames and counts. Records are counted from batch
 * headers, never decoded: the subscriber leaves the CPU to the broker.
 */
import type { Socket } from 'node:net';
import { FrameKind, PROTOCOL_VERSION, decodeFrame, encodeFrame, type ClientFrame } from '@runnel/client/codec';
import { RecordsCounter, connectRaw, maskedFrame } from './raw-ws-reader.ts';

/** Credit handed back once this much record payload has arrived. */
const GRANT_EVERY_BYTES = 16 * 1024 * 1024;

export interface RawSubscriber {
  socket: Socket;
  /** Writes one client frame. */
  send(frame: ClientFrame): void;
}

/**
 * Connects to `wsUrl`, says hello as `clientId`; `onRecords(count)` for each records frame of `topic`/0,
 * `onBatch(count, maxTimestampMs)` (optional) for each batch in it.
 */
export async function openRawSubscriber(wsUrl: string, topic: string, clientId: string, onRecords: (count: number) => void, onBatch?: (count: number, maxTimestampMs: number) => void): Promise<RawSubscriber> {
  let sinceGrant = 0;
  let socket: Socket | null = null;
  const counter = new RecordsCounter({
    batch: onBatch,
    records(count, payloadBytes) {
      onRecords(count);
      sinceGrant += payloadBytes;
      if (sinceGrant >= GRANT_EVERY_BYTES && socket) {
        socket.write(maskedFrame(encodeFrame({ type: 'credit', topic, partition: 0, bytes: sinceGrant })));
        sinceGrant = 0;
      }
    },
    other(opcode, payload) {
      if (opcode === 9) socket?.write(maskedFrame(payload, 10));
      if (opcode === 2 && payload[0] === FrameKind.error) throw new Error(`broker error: ${JSON.stringify(decodeFrame(payload))}`);
    },
  });
  socket = await connectRaw(wsUrl, counter);
  const s = socket;
  const send = (frame: ClientFrame): void => void s.write(maskedFrame(encodeFrame(frame)));
  send({ type: 'hello', minVersion: PROTOCOL_VERSION, maxVersion: PROTOCOL_VERSION, clientId, token: '' });
  return { socket: s, send };
}
