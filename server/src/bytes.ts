/**
 * Byte helpers shared by the broker's codecs and I/O (the HTTP bridge, the
 * replication and forwarding protocols). Pure, no I/O.
 */

/** `parts` as one buffer: the part itself when there is one (no copy), else one copy of them all. `total`: their summed length, when the caller already counted it. */
export function concatBytes<T extends Uint8Array>(parts: readonly T[], total?: number): T | Uint8Array<ArrayBuffer> {
  if (parts.length === 1) return parts[0];
  let n = total ?? 0;
  if (total === undefined) for (const p of parts) n += p.byteLength;
  const out = new Uint8Array(n);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.byteLength;
  }
  return out;
}
