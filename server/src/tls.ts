/**
 * TLS for the broker's one port (`--tls-cert`, `--tls-key`): the files are
 * validated before uWebSockets.js sees them, and SIGHUP reloads them without
 * closing the listen socket or any open connection (docs/security.md, "TLS").
 *
 * Validation (`loadTlsIdentity`), each failure a ConfigError naming the file
 * and the fix: both files readable regular files of at most
 * TlsLimits.maxPemFileBytes; the certificate file holds PEM certificates
 * (leaf first, then its chain, each issued by the next); the key file holds
 * one unencrypted PEM private key (uWS is given no passphrase) that belongs
 * to the leaf (`X509Certificate.checkPrivateKey`); RSA keys have at least
 * 2048 bits; the leaf is valid now. NB: this is not optional hygiene: uWS
 * reports a bad pair at start only as "App construction failed", and a
 * mismatched pair handed to `addServerName` at run time crashes the process
 * (segmentation fault, uWS 20.30), so nothing unvalidated may reach it.
 *
 * Reload. uWS has no call that replaces the certificate of a running
 * `SSLApp`; the SSL context given to `SSLApp()` serves every connection
 * whose TLS handshake names no server (SNI) or a name not registered, for
 * the life of the app. What it has is SNI contexts: `addServerName(name,
 * files)` adds one, `removeServerName(name)` drops it, and routes belong to
 * a server name (`domain(name)` then `get`/`ws`/... registers them there; a
 * name without routes answers nothing, and removing a name drops its
 * routes). So a reload validates the new files and then, for every DNS name
 * of the new certificate's subjectAltName (wildcards included), replaces
 * that name's context and registers the broker's routes under it again:
 * `TlsServer.app` is the uWS app behind a proxy that records every route
 * registration for this replay. The same handler objects are registered, so
 * sessions, the fan-out and the HTTP app are shared; open connections keep
 * the context they were accepted with (checked: WebSockets and keep-alive
 * HTTP on a removed context go on working). Limits of this, documented:
 *
 * - clients that connect by IP address send no SNI (RFC 6066 §3 forbids IP
 *   literals in it), so they keep getting the start-time certificate until
 *   the broker restarts; so does a client naming a host not in the new
 *   certificate;
 * - each reload leaves the replaced routes' uWS WebSocket context behind
 *   (a small allocation per reload, not per connection);
 * - every route must be registered before the first reload (uWS cannot
 *   "browse" back to the default server name after `domain()`).
 *
 * The private key is handed to uWS through a copy of the validated bytes in
 * a fresh 0700 directory, removed right after uWS has read it, so a file
 * replaced between validation and loading is never loaded unchecked.
 */
import { createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AppOptions, TemplatedApp } from 'uWebSockets.js';
import { assert } from '@runnel/client/codec';
import uws from './broker/uws.ts';
import { ConfigError } from './config-error.ts';

export const TlsLimits = {
  /** Largest certificate or key file read (bytes). A full chain is a few KiB; this only bounds a wrong path (a log file). */
  maxPemFileBytes: 1024 * 1024,
  /** Certificates in the certificate file (leaf + intermediates); real chains have 2-4. */
  maxChainLength: 10,
  /** SNI names registered on reload (the new certificate's DNS names); beyond it the rest keep the start-time certificate. */
  maxServerNames: 100,
  /** Smallest RSA modulus accepted (bits), as for auth keys. */
  minRsaModulusBits: 2048,
  /** A start-up or reload warning when the certificate expires within this many days. */
  expiryWarningDays: 14,
} as const;

const DAY_MS = 86_400_000;

export interface TlsFiles {
  /** PEM: the leaf certificate first, then its intermediates (a "fullchain" file). */
  certFile: string;
  /** PEM: the leaf's private key, unencrypted (PKCS#8, SEC1 or PKCS#1). */
  keyFile: string;
}

/** A validated certificate + key pair, as read from the files. */
export interface TlsIdentity {
  readonly files: TlsFiles;
  readonly certPem: string;
  readonly keyPem: string;
  readonly leaf: X509Certificate;
  readonly chainLength: number;
  /** DNS names of the leaf's subjectAltName, lower case (what SNI can select; `*.example.com` included). */
  readonly dnsNames: readonly string[];
  /** IP addresses of the leaf's subjectAltName. */
  readonly ipAddresses: readonly string[];
  readonly fingerprint256: string;
  readonly validFromMs: number;
  readonly validToMs: number;
}

export type TlsReloadResult =
  | { ok: true; changed: boolean; identity: TlsIdentity; serverNames: readonly string[]; warnings: readonly string[] }
  | { ok: false; reason: string };

const PEM_CERT = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;
const PEM_KEY = /-----BEGIN ((?:RSA |EC |ENCRYPTED )?PRIVATE KEY)-----[\s\S]+?-----END \1-----/g;

/**
 * Reads and validates the pair; throws ConfigError (operator message, no key material).
 * @example
 * const identity = loadTlsIdentity({ certFile: '/etc/runnel/fullchain.pem', keyFile: '/etc/runnel/key.pem' });
 */
export function loadTlsIdentity(files: TlsFiles, nowMs = Date.now()): TlsIdentity {
  const certPem = readPemFile(files.certFile, '--tls-cert');
  const keyPem = readPemFile(files.keyFile, '--tls-key');
  const blocks = certPem.match(PEM_CERT) ?? [];
  if (blocks.length === 0) {
    const hint = /PRIVATE KEY-----/.test(certPem) ? ' (it holds a private key: --tls-cert wants the certificate, --tls-key the key)' : '';
    throw new ConfigError(`--tls-cert ${files.certFile} holds no PEM certificate (-----BEGIN CERTIFICATE-----)${hint}`);
  }
  if (blocks.length > TlsLimits.maxChainLength) throw new ConfigError(`--tls-cert ${files.certFile} holds ${blocks.length} certificates, at most ${TlsLimits.maxChainLength} are accepted`);
  const chain = blocks.map((block, i) => {
    try {
      return new X509Certificate(block);
    } catch {
      throw new ConfigError(`--tls-cert ${files.certFile}: certificate ${i + 1} is not a valid X.509 certificate (check the PEM was copied whole)`);
    }
  });
  for (let i = 0; i + 1 < chain.length; i++) {
    if (!chain[i].checkIssued(chain[i + 1]) || !chain[i].verify(chain[i + 1].publicKey)) {
      throw new ConfigError(`--tls-cert ${files.certFile}: certificate ${i + 2} (${chain[i + 1].subject.replace(/\n/g, ', ')}) did not issue certificate ${i + 1}; list the server's certificate first, then each issuer in order`);
    }
  }
  const key = privateKeyOf(keyPem, files);
  const leaf = chain[0];
  if (!leaf.checkPrivateKey(key)) {
    throw new ConfigError(`--tls-key ${files.keyFile} is not the private key of the certificate in --tls-cert ${files.certFile} (${describeSubject(leaf)}, sha256 ${leaf.fingerprint256}); give the key this certificate was issued for`);
  }
  const validFromMs = Date.parse(leaf.validFrom);
  const validToMs = Date.parse(leaf.validTo);
  if (nowMs < validFromMs) throw new ConfigError(`--tls-cert ${files.certFile}: the certificate is not valid before ${new Date(validFromMs).toISOString()} (check the clock, or the file)`);
  if (nowMs > validToMs) throw new ConfigError(`--tls-cert ${files.certFile}: the certificate expired at ${new Date(validToMs).toISOString()}; renew it`);
  const { dnsNames, ipAddresses } = altNamesOf(leaf);
  return { files: { ...files }, certPem, keyPem, leaf, chainLength: chain.length, dnsNames, ipAddresses, fingerprint256: leaf.fingerprint256, validFromMs, validToMs };
}

/** One line for logs: subject, names, expiry, fingerprint. */
export function describeTlsIdentity(identity: TlsIdentity): string {
  const names = [...identity.dnsNames.map((n) => `DNS:${n}`), ...identity.ipAddresses.map((n) => `IP:${n}`)];
  return `${describeSubject(identity.leaf)} (${names.length > 0 ? names.join(', ') : 'no subjectAltName'}), ${identity.chainLength > 1 ? `chain of ${identity.chainLength}, ` : ''}valid until ${new Date(identity.validToMs).toISOString()}, sha256 ${identity.fingerprint256}`;
}

/** Warnings an operator should see for this certificate at `nowMs` (expiry soon). */
export function tlsWarnings(identity: TlsIdentity, nowMs = Date.now()): string[] {
  const daysLeft = Math.floor((identity.validToMs - nowMs) / DAY_MS);
  return daysLeft < TlsLimits.expiryWarningDays
    ? [`the TLS certificate (${describeSubject(identity.leaf)}) expires in ${daysLeft} day(s), at ${new Date(identity.validToMs).toISOString()}; renew it and send SIGHUP`]
    : [];
}

const ROUTE_METHODS: ReadonlySet<PropertyKey> = new Set(['get', 'post', 'options', 'del', 'patch', 'put', 'head', 'connect', 'trace', 'any', 'ws']);

interface Registration { readonly method: string; readonly args: readonly unknown[] }

/**
 * An `SSLApp` whose certificate SIGHUP can replace (see the file header).
 * @example
 * const tls = TlsServer.create({ certFile, keyFile });
 * mountRoutes(tls.app); tls.app.listen(host, port, cb);
 * process.on('SIGHUP', () => tls.reload());
 */
export class TlsServer {
  /** Register every route through this (it records them for the reload replay). */
  readonly app: TemplatedApp;
  private readonly raw: TemplatedApp;
  private readonly registrations: Registration[] = [];
  private serverNames: readonly string[] = [];
  private current: TlsIdentity;
  /** The certificate clients without SNI get (the start-time one, for the life of the app). */
  readonly startIdentity: TlsIdentity;

  private constructor(files: TlsFiles, nowMs: number) {
    this.current = this.startIdentity = loadTlsIdentity(files, nowMs);
    this.raw = withPrivateCopies(this.current, (options) => {
      try {
        return uws.SSLApp(options);
      } catch (error) {
        throw new ConfigError(`uWebSockets.js refused the TLS certificate and key (${(error as Error).message}) although they passed validation: ${describeTlsIdentity(this.current)}`);
      }
    });
    this.app = this.recordingProxy();
  }

  /** Validates the files and builds the SSLApp; throws ConfigError. */
  static create(files: TlsFiles, options: { nowMs?: number } = {}): TlsServer {
    return new TlsServer(files, options.nowMs ?? Date.now());
  }

  /** The certificate new SNI connections get (the start-time one until a reload succeeds). */
  get identity(): TlsIdentity {
    return this.current;
  }

  /** Server names the reloaded certificate is registered for (none before the first reload). */
  get reloadedServerNames(): readonly string[] {
    return this.serverNames;
  }

  /**
   * Re-reads and validates the same files; on success new connections naming one of the new
   * certificate's DNS names get it. On failure nothing changes (the previous certificate is served).
   */
  reload(nowMs = Date.now()): TlsReloadResult {
    let next: TlsIdentity;
    try {
      next = loadTlsIdentity(this.current.files, nowMs);
    } catch (error) {
      if (error instanceof ConfigError) return { ok: false, reason: error.message };
      throw error;
    }
    if (next.fingerprint256 === this.current.fingerprint256 && next.keyPem === this.current.keyPem) {
      return { ok: true, changed: false, identity: this.current, serverNames: this.serverNames, warnings: tlsWarnings(next, nowMs) };
    }
    const warnings = tlsWarnings(next, nowMs);
    if (next.dnsNames.length === 0) {
      return { ok: false, reason: `the new certificate (${describeTlsIdentity(next)}) has no DNS name in its subjectAltName, so no TLS handshake (SNI) can select it; restart the broker to serve it` };
    }
    const names = next.dnsNames.slice(0, TlsLimits.maxServerNames);
    if (next.dnsNames.length > names.length) warnings.push(`the certificate has ${next.dnsNames.length} DNS names; only the first ${names.length} get it before a restart`);
    withPrivateCopies(next, (options) => {
      for (const name of this.serverNames) this.raw.removeServerName(name);
      for (const name of names) {
        this.raw.addServerName(name, options);
        const domain = this.raw.domain(name) as unknown as Record<string, (...args: unknown[]) => unknown>;
        for (const r of this.registrations) domain[r.method](...r.args);
      }
    });
    this.serverNames = names;
    this.current = next;
    return { ok: true, changed: true, identity: next, serverNames: names, warnings };
  }

  private recordingProxy(): TemplatedApp {
    const raw = this.raw;
    const registrations = this.registrations;
    const hasReloaded = () => this.serverNames.length > 0;
    const proxy: TemplatedApp = new Proxy(raw, {
      get(target, property) {
        const value = Reflect.get(target, property, target) as unknown;
        if (typeof value !== 'function') return value;
        if (!ROUTE_METHODS.has(property)) return (value as (...a: unknown[]) => unknown).bind(target);
        return (...args: unknown[]) => {
          assert(!hasReloaded(), 'TlsServer: routes must be registered before the first certificate reload');
          registrations.push({ method: String(property), args });
          (value as (...a: unknown[]) => unknown).apply(target, args);
          return proxy;
        };
      },
    });
    return proxy;
  }
}

/**
 * What SIGHUP does (`runnel start`): reload, then one line on `log` (reloaded or unchanged) or `warn`
 * (refused, the previous certificate still served), plus expiry warnings.
 */
export function reloadAndLog(server: TlsServer, log: (line: string) => void, warn: (line: string) => void, nowMs = Date.now()): TlsReloadResult {
  const previous = server.identity;
  const result = server.reload(nowMs);
  if (result.ok) log(`runnel: ${describeReload(result, previous)}`);
  else warn(`runnel: WARNING: ${describeReload(result, previous)}`);
  if (result.ok) for (const w of result.warnings) warn(`runnel: WARNING: ${w}`);
  return result;
}

/** The reload summary line for logs. */
export function describeReload(result: TlsReloadResult, previous: TlsIdentity): string {
  if (!result.ok) return `TLS: not reloaded, still serving ${describeTlsIdentity(previous)}: ${result.reason}`;
  if (!result.changed) return `TLS: reload: the certificate and key are unchanged (${describeTlsIdentity(result.identity)})`;
  return `TLS: reloaded ${describeTlsIdentity(result.identity)}; new connections naming ${result.serverNames.join(', ')} (SNI) get it; `
    + 'clients connecting by IP address (no SNI) or by another name keep the start-time certificate until a restart; open connections keep theirs';
}

function readPemFile(path: string, flag: string): string {
  let size: number;
  try {
    const stat = statSync(path);
    if (!stat.isFile()) throw new ConfigError(`${flag} ${path} is not a regular file`);
    size = stat.size;
  } catch (error) {
    if (error instanceof ConfigError) throw error;
    throw new ConfigError(`cannot read ${flag} ${path}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
  if (size > TlsLimits.maxPemFileBytes) throw new ConfigError(`${flag} ${path} has ${size} bytes; a PEM file is at most ${TlsLimits.maxPemFileBytes} (is it the right file?)`);
  try {
    return readFileSync(path, 'utf8');
  } catch (error) {
    throw new ConfigError(`cannot read ${flag} ${path}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
}

function privateKeyOf(keyPem: string, files: TlsFiles): KeyObject {
  const blocks = [...keyPem.matchAll(PEM_KEY)];
  if (blocks.length === 0) {
    const hint = keyPem.includes('-----BEGIN CERTIFICATE-----') ? ' (it holds a certificate: --tls-key wants the private key)' : '';
    throw new ConfigError(`--tls-key ${files.keyFile} holds no PEM private key (-----BEGIN PRIVATE KEY-----)${hint}`);
  }
  if (blocks.length > 1) throw new ConfigError(`--tls-key ${files.keyFile} holds ${blocks.length} private keys; give exactly one`);
  const [block, kind] = blocks[0];
  if (kind === 'ENCRYPTED PRIVATE KEY' || /Proc-Type:\s*4,ENCRYPTED/.test(block)) {
    throw new ConfigError(`--tls-key ${files.keyFile} is encrypted; the broker takes no passphrase: decrypt it into a file only the broker's user can read (openssl pkey -in key.pem -out key.plain.pem)`);
  }
  let key: KeyObject;
  try {
    key = createPrivateKey(block);
  } catch {
    throw new ConfigError(`--tls-key ${files.keyFile} is not a valid PEM private key`);
  }
  const bits = key.asymmetricKeyDetails?.modulusLength;
  if ((key.asymmetricKeyType === 'rsa' || key.asymmetricKeyType === 'rsa-pss') && bits !== undefined && bits < TlsLimits.minRsaModulusBits) {
    throw new ConfigError(`--tls-key ${files.keyFile} is a ${bits}-bit RSA key; at least ${TlsLimits.minRsaModulusBits} bits are required`);
  }
  return key;
}

function altNamesOf(cert: X509Certificate): { dnsNames: string[]; ipAddresses: string[] } {
  const dnsNames: string[] = [];
  const ipAddresses: string[] = [];
  // Node's format: "DNS:localhost, IP Address:127.0.0.1" (names with commas are quoted; such names are not host names).
  for (const entry of (cert.subjectAltName ?? '').split(/,\s*/)) {
    if (entry.startsWith('DNS:')) dnsNames.push(entry.slice(4).toLowerCase());
    else if (entry.startsWith('IP Address:')) ipAddresses.push(entry.slice(11));
  }
  return { dnsNames: [...new Set(dnsNames)].filter((n) => /^(\*\.)?[a-z0-9.-]+$/.test(n)), ipAddresses };
}

function describeSubject(cert: X509Certificate): string {
  const cn = /(?:^|\n)CN=([^\n]*)/.exec(cert.subject)?.[1];
  return cn === undefined ? cert.subject.replace(/\n/g, ', ') : `CN=${cn}`;
}

/** Runs `fn` with uWS file options naming private copies of the validated PEM, removed afterwards. */
function withPrivateCopies<T>(identity: TlsIdentity, fn: (options: AppOptions) => T): T {
  const dir = mkdtempSync(join(tmpdir(), 'runnel-tls-'));
  try {
    const cert_file_name = join(dir, 'cert.pem');
    const key_file_name = join(dir, 'key.pem');
    writeFileSync(cert_file_name, identity.certPem, { mode: 0o600 });
    writeFileSync(key_file_name, identity.keyPem, { mode: 0o600 });
    return fn({ cert_file_name, key_file_name });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
