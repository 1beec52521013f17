/**
 * Mutual authentication of broker-to-broker links (docs/replication-protocol.md,
 * "Authentication"): a challenge-response over the cluster's link key, so only
 * a broker that holds the key — every broker of the cluster reads it from etcd —
 * can fetch a replica, forward a produce or heartbeat. Each side proves it knows
 * the key over both sides' fresh nonces and both broker ids: a recorded
 * handshake replays on no other connection, and an answer made for one broker
 * id is refused by another. No clocks involved.
 *
 * The key never travels; the link key is derived from the cluster's producer-id
 * key (one secret in etcd, two separate uses), so no new setting is needed.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/** Bytes of each side's nonce. */
export const LINK_NONCE_BYTES = 16;
/** Bytes of an HMAC-SHA256 proof. */
export const LINK_MAC_BYTES = 32;
/** Smallest link key accepted (a programmer error below it). */
const MIN_KEY_BYTES = 16;

/** Who computes a proof: the listener's (in HandshakeOk) and the dialer's (in HandshakeProof) never match each other. */
export type LinkRole = 'listener' | 'dialer';

/** The link key of a cluster, derived from its producer-id key (cluster-store `producerIdKey`). */
export function deriveLinkKey(clusterKey: Uint8Array): Uint8Array {
  if (clusterKey.length < MIN_KEY_BYTES) throw new RangeError(`cluster key of ${clusterKey.length} bytes; at least ${MIN_KEY_BYTES}`);
  return createHmac('sha256', clusterKey).update('runnel replication link key v1').digest();
}

/** A fresh nonce for one handshake. */
export function linkNonce(): Uint8Array {
  return randomBytes(LINK_NONCE_BYTES);
}

export interface LinkTranscript {
  dialerId: number;
  listenerId: number;
  dialerNonce: Uint8Array;
  listenerNonce: Uint8Array;
}

/** HMAC-SHA256(key, role | dialerId | listenerId | dialerNonce | listenerNonce). */
export function linkProof(key: Uint8Array, role: LinkRole, t: LinkTranscript): Uint8Array {
  if (key.length < MIN_KEY_BYTES) throw new RangeError(`link key of ${key.length} bytes; at least ${MIN_KEY_BYTES}`);
  const ids = Buffer.alloc(9);
  ids[0] = role === 'listener' ? 0x4c : 0x44; // 'L' | 'D'
  ids.writeInt32BE(t.dialerId, 1);
  ids.writeInt32BE(t.listenerId, 5);
  return createHmac('sha256', key).update(ids).update(t.dialerNonce).update(t.listenerNonce).digest();
}

/** Whether `mac` is `role`'s proof for this transcript (constant time). */
export function isValidLinkProof(key: Uint8Array, role: LinkRole, t: LinkTranscript, mac: Uint8Array): boolean {
  if (mac.length !== LINK_MAC_BYTES || t.dialerNonce.length !== LINK_NONCE_BYTES || t.listenerNonce.length !== LINK_NONCE_BYTES) return false;
  return timingSafeEqual(linkProof(key, role, t), mac);
}
