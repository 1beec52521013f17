/**
 * Page for the raw-ceiling half of `npm run bench -- client`: a plain
 * WebSocket that only counts the bytes of the messages it receives (no
 * decoding, no credit), timed from open to the last expected byte. The
 * server (test/bench/client-raw-ceiling.ts) pushes pre-encoded frames.
 */
export interface RawCeilingResult { bytes: number; messages: number; ms: number }

declare global {
  interface Window { runnelRawCeiling: { run(options: { url: string; frames: number; expectedBytes: number; timeoutMs: number }): Promise<RawCeilingResult> } }
}

window.runnelRawCeiling = {
  run({ url, frames, expectedBytes, timeoutMs }) {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(`${url}?frames=${frames}`);
      ws.binaryType = 'arraybuffer';
      let bytes = 0, messages = 0, startedAt = 0;
      const finish = (): void => { clearTimeout(timer); ws.close(); resolve({ bytes, messages, ms: performance.now() - startedAt }); };
      const timer = setTimeout(finish, timeoutMs);
      ws.onopen = () => { startedAt = performance.now(); };
      ws.onmessage = (event: MessageEvent<ArrayBuffer>) => {
        bytes += event.data.byteLength;
        if (++messages === frames || bytes >= expectedBytes) finish();
      };
      ws.onerror = () => { clearTimeout(timer); reject(new Error(`raw ceiling socket to ${url} failed`)); };
    });
  },
};
