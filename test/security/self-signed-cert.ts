/**
 * Self-signed TLS certificates for tests, made with Node's crypto alone (no
 * `openssl` binary needed): an EC P-256 key and an X.509 v3 certificate
 * signed by it, with the subjectAltName entries a test connects by
 * (`DNS:localhost`, `IP:127.0.0.1` by default). The DER is written here by
 * hand (a few TLV helpers); Node's `X509Certificate` parses the result and
 * `checkPrivateKey` / `verify` confirm it, and `openssl x509 -text` reads it
 * as it reads `openssl req -x509` output.
 *
 * `spkiSha256Base64` is what Chromium's `--ignore-certificate-errors-spki-list`
 * takes: with it, Chromium trusts exactly this key and nothing else.
 */
import { createHash, generateKeyPairSync, randomBytes, sign, X509Certificate, type KeyObject } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface SelfSignedCert {
  certPem: string;
  keyPem: string;
  privateKey: KeyObject;
  /** base64(sha256(SubjectPublicKeyInfo DER)), for Chromium's --ignore-certificate-errors-spki-list. */
  spkiSha256Base64: string;
  /** Node's colon-separated SHA-256 fingerprint of the certificate. */
  fingerprint256: string;
}

export interface SelfSignedOptions {
  commonName?: string;
  /** DNS names and IP addresses for subjectAltName; default localhost and 127.0.0.1. */
  altNames?: string[];
  notBefore?: Date;
  notAfter?: Date;
}

const DAY_MS = 86_400_000;

/**
 * @example
 * const cert = selfSignedCert({ commonName: 'localhost' });
 * writeFileSync('cert.pem', cert.certPem); writeFileSync('key.pem', cert.keyPem);
 */
export function selfSignedCert(options: SelfSignedOptions = {}): SelfSignedCert {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const spki = publicKey.export({ type: 'spki', format: 'der' });
  const now = Date.now();
  const notBefore = options.notBefore ?? new Date(now - DAY_MS);
  const notAfter = options.notAfter ?? new Date(now + 30 * DAY_MS);
  const name = seq(set(seq(oid('2.5.4.3'), utf8(options.commonName ?? 'localhost'))));
  const altNames = (options.altNames ?? ['localhost', '127.0.0.1']).map((n) => (isIP(n) === 4
    ? tlv(0x87, Buffer.from(n.split('.').map(Number)))
    : tlv(0x82, Buffer.from(n, 'ascii'))));
  const ecdsaWithSha256 = seq(oid('1.2.840.10045.4.3.2'));
  const serial = randomBytes(16);
  serial[0] &= 0x7f; // positive
  serial[0] |= 0x01; // and no leading zero byte to strip
  const extensions = seq(
    seq(oid('2.5.29.19'), bool(true), octets(seq(bool(true)))), // basicConstraints critical, CA:TRUE (as `openssl req -x509`)
    seq(oid('2.5.29.17'), octets(seq(...altNames))), // subjectAltName
    seq(oid('2.5.29.37'), octets(seq(oid('1.3.6.1.5.5.7.3.1')))), // extKeyUsage serverAuth
  );
  const tbs = seq(
    tlv(0xa0, integer(Buffer.from([2]))), // version v3
    integer(serial),
    ecdsaWithSha256,
    name,
    seq(time(notBefore), time(notAfter)),
    name,
    spki,
    tlv(0xa3, extensions),
  );
  const signature = sign('sha256', tbs, privateKey); // DER ECDSA-Sig-Value
  const der = seq(tbs, ecdsaWithSha256, tlv(0x03, Buffer.concat([Buffer.from([0]), signature])));
  const certPem = `-----BEGIN CERTIFICATE-----\n${der.toString('base64').match(/.{1,64}/g)!.join('\n')}\n-----END CERTIFICATE-----\n`;
  const cert = new X509Certificate(certPem);
  return {
    certPem,
    keyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string,
    privateKey,
    spkiSha256Base64: createHash('sha256').update(spki).digest('base64'),
    fingerprint256: cert.fingerprint256,
  };
}

/** Writes cert.pem and key.pem into a fresh temp dir; `remove()` deletes it. */
export function writeCertFiles(cert: SelfSignedCert, dir = mkdtempSync(join(tmpdir(), 'runnel-tls-'))): { dir: string; certFile: string; keyFile: string; remove(): void } {
  const certFile = join(dir, 'cert.pem');
  const keyFile = join(dir, 'key.pem');
  writeFileSync(certFile, cert.certPem);
  writeFileSync(keyFile, cert.keyPem, { mode: 0o600 });
  return { dir, certFile, keyFile, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

// ---- DER (X.690) ----

function tlv(tag: number, content: Buffer): Buffer {
  const n = content.length;
  const length = n < 0x80 ? Buffer.from([n]) : n < 0x100 ? Buffer.from([0x81, n]) : Buffer.from([0x82, n >> 8, n & 0xff]);
  return Buffer.concat([Buffer.from([tag]), length, content]);
}

const seq = (...items: Buffer[]): Buffer => tlv(0x30, Buffer.concat(items));
const set = (...items: Buffer[]): Buffer => tlv(0x31, Buffer.concat(items));
const integer = (bytes: Buffer): Buffer => tlv(0x02, bytes);
const bool = (value: boolean): Buffer => tlv(0x01, Buffer.from([value ? 0xff : 0]));
const octets = (content: Buffer): Buffer => tlv(0x04, content);
const utf8 = (text: string): Buffer => tlv(0x0c, Buffer.from(text, 'utf8'));

function oid(dotted: string): Buffer {
  const [a, b, ...rest] = dotted.split('.').map(Number);
  const bytes = [40 * a + b];
  for (const part of rest) {
    const chunk = [part & 0x7f];
    for (let v = part >>> 7; v > 0; v >>>= 7) chunk.unshift((v & 0x7f) | 0x80);
    bytes.push(...chunk);
  }
  return tlv(0x06, Buffer.from(bytes));
}

/** UTCTime (years 1950-2049) or GeneralizedTime, as RFC 5280 §4.1.2.5 requires. */
function time(date: Date): Buffer {
  const iso = date.toISOString().replace(/[-:T]/g, '').slice(0, 14); // YYYYMMDDHHMMSS
  const year = date.getUTCFullYear();
  return year >= 1950 && year < 2050 ? tlv(0x17, Buffer.from(`${iso.slice(2)}Z`, 'ascii')) : tlv(0x18, Buffer.from(`${iso}Z`, 'ascii'));
}
