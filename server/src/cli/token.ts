/**
 * `runnel token create`: mints an HS256 token in Runnel's claims layout
 * (docs/security.md) and prints it. Needs no broker: the secret is the one
 * configured in the broker's `auth.hs256Secrets`, taken from `--secret` or,
 * better (it stays out of shell history and `ps`), RUNNEL_AUTH_SECRET.
 */
import { parseArgs } from 'node:util';
import { RunnelError } from '@runnel/client/codec';
import { mintHs256Token } from '../auth/mint.ts';
import { CliError } from './http-client.ts';
import type { Output } from './output.ts';

const USAGE = "runnel token create --sub SUBJECT [--publish PATTERN]... [--subscribe PATTERN]... [--group PATTERN]... [--admin] [--ttl 1h] [--issuer ISS] [--audience AUD] [--secret S | env RUNNEL_AUTH_SECRET]";

/** Default token lifetime when --ttl is not given. */
const DEFAULT_TTL = '1h';
/** Longest --ttl accepted: a longer-lived token is a standing credential; mint short ones and refresh. */
const MAX_TTL_MS = 366 * 86_400_000;

const UNIT_MS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;

/** "90s", "15m", "1h", "7d", "500ms" → milliseconds; undefined when malformed. */
export function parseDurationMs(text: string): number | undefined {
  const match = /^(\d{1,9})(ms|s|m|h|d)$/.exec(text.trim());
  if (match === null) return undefined;
  return Number(match[1]) * UNIT_MS[match[2] as keyof typeof UNIT_MS];
}

export async function runTokenCommand(args: string[], out: Output, env: NodeJS.ProcessEnv = process.env, nowMs: number = Date.now()): Promise<void> {
  const [sub, ...rest] = args;
  if (sub !== 'create') throw new CliError('INVALID_REQUEST', `unknown token command '${sub ?? ''}'; use: ${USAGE}`);
  const { values, positionals } = parseArgs({
    args: rest, allowPositionals: true,
    options: {
      sub: { type: 'string' },
      publish: { type: 'string', multiple: true },
      subscribe: { type: 'string', multiple: true },
      group: { type: 'string', multiple: true },
      admin: { type: 'boolean' },
      ttl: { type: 'string' },
      issuer: { type: 'string' },
      audience: { type: 'string' },
      secret: { type: 'string' },
    },
  });
  if (positionals.length > 0) throw new CliError('INVALID_REQUEST', `unexpected argument '${positionals[0]}'; usage: ${USAGE}`);
  if (values.sub === undefined || values.sub === '') throw new CliError('INVALID_REQUEST', `--sub is required (the token's subject); usage: ${USAGE}`);
  const ttlText = values.ttl ?? DEFAULT_TTL;
  const ttlMs = parseDurationMs(ttlText);
  if (ttlMs === undefined || ttlMs < 1000 || ttlMs > MAX_TTL_MS) {
    throw new CliError('INVALID_REQUEST', `--ttl must be a duration from 1s to 366d such as 30s, 15m, 1h or 7d, got '${ttlText}'`);
  }
  const secret = values.secret ?? env.RUNNEL_AUTH_SECRET;
  if (secret === undefined || secret === '') {
    throw new CliError('INVALID_REQUEST', 'no signing secret: set RUNNEL_AUTH_SECRET (preferred) or pass --secret; it must be one of the broker\'s auth.hs256Secrets');
  }
  const grants = { publish: values.publish ?? [], subscribe: values.subscribe ?? [], group: values.group ?? [], admin: values.admin ?? false };
  let token: string;
  try {
    token = await mintHs256Token({ subject: values.sub, grants, ttlMs, secret, nowMs, issuer: values.issuer, audience: values.audience });
  } catch (error) {
    if (error instanceof RunnelError) throw new CliError(error.errorName, error.message);
    throw error;
  }
  const expiresAt = new Date(Math.floor((nowMs + ttlMs) / 1000) * 1000).toISOString();
  out.result({ token, sub: values.sub, expiresAt, runnel: grants }, () => out.line(token));
}
