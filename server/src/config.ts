/**
 * Broker configuration from command-line flags, environment variables, an
 * optional JSON file and defaults, in that order of precedence
 * (flags > env > `--config file.json` > defaults). Every value is checked by
 * zod once, here, at the boundary; a bad value fails start-up with a message
 * that names where it came from and what is allowed, e.g.
 * `--port must be an integer 0-65535, got 'abc'`.
 *
 * Invariant: the returned config is complete and valid, and its `limits`
 * passed `validateLimits()`. Documented in docs/configuration.md.
 */
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { parseAuthConfig, type AuthConfig } from './auth/config.ts';
import { ConfigError } from './config-error.ts';
import { parseQuotaConfig, type QuotaConfig } from './quota/config.ts';
import { LimitsSchema, validateLimits, type Limits } from './limits.ts';

/** Structurally the broker's `BrokerConfig` (server/src/broker/broker.ts) plus the HTTP-only settings. */
export interface RunnelConfig {
  brokerId: number;
  dataDir: string;
  host: string;
  port: number;
  autoCreateTopics: boolean;
  defaultPartitions: number;
  flushIntervalMs: number;
  limits: Limits;
  /** Demo build served at `/`; undefined = no static files. */
  staticDir?: string;
  /** Browser origins allowed besides same-origin, for CORS and WebSocket upgrades; `[]` = loopback origins only, `['*']` = any. */
  corsOrigins: string[];
  /** Accept anonymous clients on a non-loopback address (a warning at start and in /readyz). */
  insecure: boolean;
  /** Token authentication (docs/security.md); mode `anonymous` without keys. */
  auth: AuthConfig;
  /** Quotas per subject and IP, from the config file's `quotas` object (docs/security.md). */
  quotas: QuotaConfig;
  /** TLS certificate and key files (PEM); both or neither. */
  tlsCertFile?: string;
  tlsKeyFile?: string;
  /** Cluster mode (`--cluster <etcd urls>`); undefined = single node (docs/cluster.md). */
  cluster?: ClusterConfig;
}

/** How this broker joins a cluster (docs/cluster.md). */
export interface ClusterConfig {
  /** etcd client URLs. */
  etcdEndpoints: string[];
  /** Key prefix in etcd: several clusters can share one etcd. */
  prefix: string;
  /** Host and port other brokers dial for replication; port 0 = any free port (registered as bound). */
  replicationHost: string;
  replicationPort: number;
  /** Base URL clients reach this broker at (http(s)://host:port), as reported in /v1/cluster. */
  advertiseUrl?: string;
  /** Dial overrides: broker id → host:port used instead of its registered replication address (fault proxies, NAT). */
  peerAddresses: Map<number, { host: string; port: number }>;
  /** Defaults for new topics; undefined = min(3, live brokers) and 2 when RF >= 3 else 1. */
  defaultReplicationFactor?: number;
  minInsyncReplicas?: number;
}

/** The demo build, served by default when it exists (repo checkout). */
const DEFAULT_STATIC_DIR = fileURLToPath(new URL('../../demo/dist', import.meta.url));

type Kind = 'int' | 'bool' | 'string' | 'list';

type ScalarKey = Exclude<keyof RunnelConfig, 'limits' | 'auth' | 'cluster'> | 'nodeId' | 'clusterEndpoints' | 'clusterPrefix' | 'replicationHost' | 'replicationPort' | 'advertiseUrl' | 'peerAddresses' | 'defaultReplicationFactor' | 'minInsyncReplicas' | 'authSecrets' | 'authPublicKeyFiles' | 'authJwksFile' | 'authIssuer' | 'authAudience';

interface Field {
  key: ScalarKey;
  flag: string;
  env: string;
  kind: Kind;
  schema: z.ZodType;
  /** What a valid value looks like, for error messages. */
  expect: string;
}

const int = (min: number, max: number) => z.number().int().min(min).max(max);

/** Every scalar setting, its flag, its variable and its check. */
export const CONFIG_FIELDS: readonly Field[] = [
  { key: 'port', flag: '--port', env: 'RUNNEL_PORT', kind: 'int', schema: int(0, 65535), expect: 'an integer 0-65535' },
  { key: 'host', flag: '--host', env: 'RUNNEL_HOST', kind: 'string', schema: z.string().min(1), expect: 'a host name or IP address' },
  { key: 'dataDir', flag: '--data', env: 'RUNNEL_DATA', kind: 'string', schema: z.string().min(1), expect: 'a directory path' },
  { key: 'brokerId', flag: '--broker-id', env: 'RUNNEL_BROKER_ID', kind: 'int', schema: int(0, 2 ** 31 - 1), expect: 'an integer 0-2147483647' },
  { key: 'autoCreateTopics', flag: '--auto-create-topics', env: 'RUNNEL_AUTO_CREATE_TOPICS', kind: 'bool', schema: z.boolean(), expect: 'true or false' },
  { key: 'defaultPartitions', flag: '--default-partitions', env: 'RUNNEL_DEFAULT_PARTITIONS', kind: 'int', schema: int(1, 1_000_000), expect: 'an integer >= 1' },
  { key: 'flushIntervalMs', flag: '--flush-interval-ms', env: 'RUNNEL_FLUSH_INTERVAL_MS', kind: 'int', schema: int(0, 3_600_000), expect: 'an integer 0-3600000 (0 = fsync before every ack)' },
  { key: 'staticDir', flag: '--static-dir', env: 'RUNNEL_STATIC_DIR', kind: 'string', schema: z.string(), expect: 'a directory path (empty = none)' },
  { key: 'corsOrigins', flag: '--cors-origins', env: 'RUNNEL_CORS_ORIGINS', kind: 'list', schema: z.array(z.string().min(1)), expect: "a comma-separated list of origins or '*'" },
  { key: 'insecure', flag: '--insecure', env: 'RUNNEL_INSECURE', kind: 'bool', schema: z.boolean(), expect: 'true or false' },
  { key: 'authSecrets', flag: '--auth-secret', env: 'RUNNEL_AUTH_SECRET', kind: 'list', schema: z.array(z.string().min(1)), expect: 'HS256 secrets, comma-separated' },
  { key: 'authPublicKeyFiles', flag: '--auth-public-key', env: 'RUNNEL_AUTH_PUBLIC_KEY', kind: 'list', schema: z.array(z.string().min(1)), expect: 'public key files (PEM or JWK), comma-separated' },
  { key: 'authJwksFile', flag: '--auth-jwks', env: 'RUNNEL_AUTH_JWKS', kind: 'string', schema: z.string().min(1), expect: 'a JWKS file path' },
  { key: 'authIssuer', flag: '--auth-issuer', env: 'RUNNEL_AUTH_ISSUER', kind: 'string', schema: z.string().min(1), expect: 'the required iss claim' },
  { key: 'authAudience', flag: '--auth-audience', env: 'RUNNEL_AUTH_AUDIENCE', kind: 'string', schema: z.string().min(1), expect: 'the required aud claim' },
  { key: 'tlsCertFile', flag: '--tls-cert', env: 'RUNNEL_TLS_CERT', kind: 'string', schema: z.string().min(1), expect: 'a PEM certificate file' },
  { key: 'tlsKeyFile', flag: '--tls-key', env: 'RUNNEL_TLS_KEY', kind: 'string', schema: z.string().min(1), expect: 'a PEM private key file' },
  { key: 'clusterEndpoints', flag: '--cluster', env: 'RUNNEL_CLUSTER', kind: 'list', schema: z.array(z.string().regex(/^https?:\/\/[^/\s]+$/)).min(1), expect: 'comma-separated etcd client URLs (http://host:2379)' },
  { key: 'nodeId', flag: '--node-id', env: 'RUNNEL_NODE_ID', kind: 'int', schema: int(0, 2 ** 31 - 1), expect: 'an integer 0-2147483647 (the same as --broker-id)' },
  { key: 'clusterPrefix', flag: '--cluster-prefix', env: 'RUNNEL_CLUSTER_PREFIX', kind: 'string', schema: z.string().regex(/^\/[A-Za-z0-9._/-]*$/), expect: 'an etcd key prefix starting with / (default /runnel)' },
  { key: 'replicationHost', flag: '--replication-host', env: 'RUNNEL_REPLICATION_HOST', kind: 'string', schema: z.string().min(1), expect: 'the host other brokers dial for replication' },
  { key: 'replicationPort', flag: '--replication-port', env: 'RUNNEL_REPLICATION_PORT', kind: 'int', schema: int(0, 65535), expect: 'an integer 0-65535 (default: --port + 1)' },
  { key: 'advertiseUrl', flag: '--advertise-url', env: 'RUNNEL_ADVERTISE_URL', kind: 'string', schema: z.string().regex(/^https?:\/\/[^/\s]+$/), expect: 'the base URL clients reach this broker at (http://host:port)' },
  { key: 'peerAddresses', flag: '--peer-address', env: 'RUNNEL_PEER_ADDRESS', kind: 'list', schema: z.array(z.string().regex(/^\d+=[^=\s]+:\d+$/)), expect: 'comma-separated id=host:port dial overrides' },
  { key: 'defaultReplicationFactor', flag: '--default-replication-factor', env: 'RUNNEL_DEFAULT_REPLICATION_FACTOR', kind: 'int', schema: int(1, 255), expect: 'an integer 1-255 (default min(3, brokers))' },
  { key: 'minInsyncReplicas', flag: '--min-insync-replicas', env: 'RUNNEL_MIN_INSYNC_REPLICAS', kind: 'int', schema: int(1, 255), expect: 'an integer 1-255 (default 2 when the replication factor is >= 3, else 1)' },
];

/** Secure by default: loopback only, anonymous only there (docs/security.md). */
const DEFAULTS = {
  port: 8080, host: '127.0.0.1', dataDir: './data', brokerId: 0, autoCreateTopics: true,
  defaultPartitions: 3, flushIntervalMs: 0, corsOrigins: [] as string[], insecure: false,
} as const;

export { ConfigError };

interface RawSources {
  flags: Map<string, string>;
  limitFlags: Map<string, string>;
  configFile?: string;
}

/** Splits `--name value`, `--name=value`, `--no-name` and repeated `--limit k=v`; rejects unknown flags. */
function parseFlags(argv: readonly string[]): RawSources {
  const byFlag = new Map(CONFIG_FIELDS.map((f) => [f.flag, f]));
  const out: RawSources = { flags: new Map(), limitFlags: new Map() };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (!arg.startsWith('--')) throw new ConfigError(`unexpected argument '${arg}'`);
    const eq = arg.indexOf('=');
    let name = eq < 0 ? arg : arg.slice(0, eq);
    let value: string | undefined = eq < 0 ? undefined : arg.slice(eq + 1);
    if (name.startsWith('--no-') && byFlag.get(`--${name.slice(5)}`)?.kind === 'bool' && value === undefined) {
      name = `--${name.slice(5)}`;
      value = 'false';
    }
    const field = byFlag.get(name);
    const known = field !== undefined || name === '--config' || name === '--limit';
    if (!known) throw new ConfigError(`unknown flag ${name}; known flags: ${[...byFlag.keys(), '--config', '--limit'].join(', ')}`);
    if (value === undefined && field?.kind === 'bool' && (argv[i + 1] === undefined || argv[i + 1].startsWith('--'))) value = 'true';
    if (value === undefined) {
      if (argv[i + 1] === undefined) throw new ConfigError(`${name} needs a value`);
      value = argv[++i];
    }
    if (name === '--config') out.configFile = value;
    else if (name === '--limit') {
      const [key, v] = splitLimit(value);
      out.limitFlags.set(key, v);
    } else out.flags.set(name, value);
  }
  return out;
}

function splitLimit(value: string): [string, string] {
  const eq = value.indexOf('=');
  if (eq <= 0) throw new ConfigError(`--limit expects name=value (e.g. --limit maxHttpBodyBytes=2097152), got '${value}'`);
  return [value.slice(0, eq), value.slice(eq + 1)];
}

/** Turns a flag/env string into the field's type; undefined when it does not even parse. */
function coerce(kind: Kind, raw: string): unknown {
  switch (kind) {
    case 'int': return /^-?\d+$/.test(raw.trim()) ? Number(raw.trim()) : undefined;
    case 'bool': {
      const v = raw.trim().toLowerCase();
      if (['true', '1', 'yes', 'on'].includes(v)) return true;
      if (['false', '0', 'no', 'off'].includes(v)) return false;
      return undefined;
    }
    case 'string': return raw;
    case 'list': return raw.split(',').map((s) => s.trim()).filter((s) => s.length > 0);
  }
}

function checked(field: Field, value: unknown, source: string, raw: unknown): unknown {
  const shown = typeof raw === 'string' ? `'${raw}'` : JSON.stringify(raw);
  if (value === undefined || !field.schema.safeParse(value).success) {
    throw new ConfigError(`${source} must be ${field.expect}, got ${shown}`);
  }
  return value;
}

const FileSchema = z.object({
  limits: z.record(z.string(), z.unknown()).optional(), auth: z.record(z.string(), z.unknown()).optional(), quotas: z.record(z.string(), z.unknown()).optional(),
}).catchall(z.unknown());

function readConfigFile(path: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (cause) {
    throw new ConfigError(`cannot read config file ${path}: ${(cause as Error).message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (cause) {
    throw new ConfigError(`config file ${path} is not valid JSON: ${(cause as Error).message}`);
  }
  const parsed = FileSchema.safeParse(json);
  if (!parsed.success) throw new ConfigError(`config file ${path} must hold a JSON object (limits: an object), got ${JSON.stringify(json)}`);
  const known = new Set<string>([...CONFIG_FIELDS.map((f) => f.key), 'limits', 'auth', 'quotas']);
  for (const key of Object.keys(parsed.data)) {
    if (!known.has(key)) throw new ConfigError(`config file ${path}: unknown key '${key}'; known keys: ${[...known].join(', ')}`);
  }
  return parsed.data;
}

/** Merges limit overrides (file < flags), each checked against its own schema, then validateLimits(). */
function loadLimits(fromFile: Record<string, unknown>, fromFlags: Map<string, string>, path: string | undefined): Limits {
  const shape = LimitsSchema.shape as Record<string, z.ZodType>;
  const merged: Record<string, unknown> = {};
  const check = (key: string, value: unknown, source: string) => {
    if (!(key in shape)) throw new ConfigError(`${source}: unknown limit '${key}'; known limits: ${Object.keys(shape).join(', ')}`);
    if (!shape[key].safeParse(value).success) {
      throw new ConfigError(`${source}: limit ${key} is out of range or not an integer, got ${JSON.stringify(value)} (default ${String((validateLimits() as Record<string, unknown>)[key])})`);
    }
    merged[key] = value;
  };
  for (const [key, value] of Object.entries(fromFile)) check(key, value, `config file ${path}`);
  for (const [key, raw] of fromFlags) check(key, /^-?\d+$/.test(raw) ? Number(raw) : raw, '--limit');
  try {
    return validateLimits(merged as Partial<Limits>);
  } catch (cause) {
    throw new ConfigError((cause as Error).message);
  }
}

/**
 * Builds the broker configuration. Throws ConfigError with an operator-facing message.
 * @example
 * const config = loadConfig(['--port', '9090'], process.env);
 * await startServer(config);
 */
export function loadConfig(argv: readonly string[], env: NodeJS.ProcessEnv): RunnelConfig {
  const raw = parseFlags(argv);
  const configPath = raw.configFile ?? (env.RUNNEL_CONFIG || undefined);
  const file = configPath === undefined ? {} : readConfigFile(configPath);
  const values: Record<string, unknown> = { ...DEFAULTS, corsOrigins: [...DEFAULTS.corsOrigins] };
  if (existsSync(DEFAULT_STATIC_DIR)) values.staticDir = DEFAULT_STATIC_DIR;

  for (const field of CONFIG_FIELDS) {
    const flag = raw.flags.get(field.flag);
    const fromEnv = env[field.env];
    if (flag !== undefined) values[field.key] = checked(field, coerce(field.kind, flag), field.flag, flag);
    else if (fromEnv !== undefined && fromEnv !== '') values[field.key] = checked(field, coerce(field.kind, fromEnv), field.env, fromEnv);
    else if (field.key in file) values[field.key] = checked(field, file[field.key], `config file ${configPath}: ${field.key}`, file[field.key]);
  }
  const limits = loadLimits((file.limits ?? {}) as Record<string, unknown>, raw.limitFlags, configPath);
  const auth = loadAuth(values, (file.auth ?? undefined) as Record<string, unknown> | undefined, configPath);
  const staticDir = values.staticDir === '' || values.staticDir === undefined ? undefined : resolve(values.staticDir as string);
  const brokerId = (values.nodeId ?? values.brokerId) as number;
  const cluster = loadCluster(values);
  return {
    brokerId,
    dataDir: resolve(values.dataDir as string),
    host: values.host as string,
    port: values.port as number,
    autoCreateTopics: values.autoCreateTopics as boolean,
    defaultPartitions: values.defaultPartitions as number,
    flushIntervalMs: values.flushIntervalMs as number,
    limits,
    ...(staticDir === undefined ? {} : { staticDir }),
    corsOrigins: values.corsOrigins as string[],
    insecure: values.insecure as boolean,
    auth,
    quotas: parseQuotaConfig(file.quotas ?? {}, configPath === undefined ? 'quotas' : `config file ${configPath}: quotas`),
    ...(values.tlsCertFile === undefined ? {} : { tlsCertFile: resolve(values.tlsCertFile as string) }),
    ...(values.tlsKeyFile === undefined ? {} : { tlsKeyFile: resolve(values.tlsKeyFile as string) }),
    ...(cluster === undefined ? {} : { cluster }),
  };
}

/** The cluster settings; undefined without `--cluster`. Cluster-only flags without it are refused (they would silently do nothing). */
function loadCluster(values: Record<string, unknown>): ClusterConfig | undefined {
  const endpoints = values.clusterEndpoints as string[] | undefined;
  if (endpoints === undefined || endpoints.length === 0) {
    const stray = CONFIG_FIELDS.filter((f) => ['clusterPrefix', 'replicationHost', 'replicationPort', 'advertiseUrl', 'peerAddresses', 'defaultReplicationFactor', 'minInsyncReplicas'].includes(f.key) && values[f.key] !== undefined);
    if (stray.length > 0) throw new ConfigError(`${stray.map((f) => f.flag).join(', ')} only apply with --cluster <etcd urls>`);
    return undefined;
  }
  const peerAddresses = new Map<number, { host: string; port: number }>();
  for (const entry of (values.peerAddresses as string[] | undefined) ?? []) {
    const [id, address] = entry.split('=');
    const colon = address.lastIndexOf(':');
    const port = Number(address.slice(colon + 1));
    if (port < 1 || port > 65535) throw new ConfigError(`--peer-address ${entry}: port must be 1-65535`);
    peerAddresses.set(Number(id), { host: address.slice(0, colon), port });
  }
  const port = values.port as number;
  const host = values.host as string;
  const rf = values.defaultReplicationFactor as number | undefined;
  const minIsr = values.minInsyncReplicas as number | undefined;
  if (rf !== undefined && minIsr !== undefined && minIsr > rf) throw new ConfigError(`--min-insync-replicas ${minIsr} is above --default-replication-factor ${rf}: no write could ever be acknowledged`);
  return {
    etcdEndpoints: endpoints,
    prefix: ((values.clusterPrefix as string | undefined) ?? '/runnel').replace(/\/+$/, '') || '/runnel',
    replicationHost: (values.replicationHost as string | undefined) ?? (host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host),
    replicationPort: (values.replicationPort as number | undefined) ?? (port === 0 ? 0 : port + 1),
    ...(values.advertiseUrl === undefined ? {} : { advertiseUrl: values.advertiseUrl as string }),
    peerAddresses,
    ...(rf === undefined ? {} : { defaultReplicationFactor: rf }),
    ...(minIsr === undefined ? {} : { minInsyncReplicas: minIsr }),
  };
}

/** The `auth` object of the config file, with the `--auth-*` flags (or variables) on top; any key configured = mode token. */
function loadAuth(values: Record<string, unknown>, fromFile: Record<string, unknown> | undefined, path: string | undefined): AuthConfig {
  const raw: Record<string, unknown> = { ...(fromFile ?? {}) };
  if (values.authSecrets !== undefined) raw.hs256Secrets = values.authSecrets;
  if (values.authPublicKeyFiles !== undefined) raw.publicKeyFiles = values.authPublicKeyFiles;
  if (values.authJwksFile !== undefined) raw.jwksFile = values.authJwksFile;
  if (values.authIssuer !== undefined) raw.issuer = values.authIssuer;
  if (values.authAudience !== undefined) raw.audience = values.authAudience;
  const hasKeys = ['hs256Secrets', 'publicKeyFiles', 'jwksFile'].some((k) => raw[k] !== undefined && !(Array.isArray(raw[k]) && (raw[k] as unknown[]).length === 0));
  if (raw.mode === undefined && hasKeys) raw.mode = 'token';
  return parseAuthConfig(raw, path === undefined ? 'auth' : `config file ${path}: auth`);
}
