/**
 * `npm run demo:traffic -- --users N [--rate R] [--url http://localhost:8080] [--duration S] [--events E] [--seed X]`
 *
 * A Node process simulating N shoppers: it produces the same typed activity
 * events as the shop through @runnel/client (with `ws` as its WebSocket) and
 * prints one live progress line (sent, acknowledged, rate). Ctrl-C stops
 * generating and waits for the acknowledgements of what was sent; a second
 * Ctrl-C exits at once.
 */
import { parseArgs } from 'node:util';
import { WebSocket } from 'ws';
import { createClient, type WebSocketConstructor } from '@runnel/client';
import { activityTopic } from './activity.ts';
import { brokerEndpoint } from './broker-endpoint.ts';
import { TrafficSimulation } from './traffic/simulation.ts';
import { runTraffic, type TrafficProgress } from './traffic/traffic-run.ts';

const USAGE = 'usage: npm run demo:traffic -- --users N [--rate R] [--url http://localhost:8080] [--duration S] [--events E] [--seed X]';

function positive(name: string, raw: string | undefined, fallback: number | undefined): number | undefined {
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value <= 0) throw new Error(`--${name} must be a positive number, got "${raw}"\n${USAGE}`);
  return value;
}

function parseOptions(argv: string[]) {
  const { values } = parseArgs({
    args: argv,
    options: {
      users: { type: 'string', default: '20' },
      rate: { type: 'string' },
      url: { type: 'string', default: process.env.RUNNEL_URL ?? 'http://localhost:8080' },
      duration: { type: 'string' },
      events: { type: 'string' },
      seed: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    console.log(USAGE);
    process.exit(0);
  }
  const users = Math.floor(positive('users', values.users, 20)!);
  return {
    users,
    // Default: each simulated user acts about five times a second.
    ratePerSec: positive('rate', values.rate, users * 5)!,
    url: values.url,
    durationMs: values.duration === undefined ? undefined : positive('duration', values.duration, undefined)! * 1000,
    maxEvents: values.events === undefined ? undefined : Math.floor(positive('events', values.events, undefined)!),
    seed: values.seed === undefined ? Date.now() % 2 ** 31 : Number(values.seed),
  };
}

function progressLine(p: TrafficProgress, target: string): string {
  return `traffic → ${target}: sent ${p.sent} · acked ${p.acked} · failed ${p.failed} · ${p.ackedPerSec}/s acked · ${(p.elapsedMs / 1000).toFixed(1)} s`;
}

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2));
  const endpoint = brokerEndpoint(options.url);
  // Memory storage: a generator has nothing to resume; Ctrl-C waits for the acks instead.
  // NB: `ws`'s typings differ from the WHATWG WebSocket the SDK types against, hence the cast.
  const client = createClient({ urls: [endpoint.webSocketUrl], WebSocket: WebSocket as unknown as WebSocketConstructor, clientId: 'runnel-demo-traffic' });
  client.on('error', (error) => console.error(`\nrunnel: ${error.message}`));
  const stop = new AbortController();
  const abort = new AbortController();
  process.on('SIGINT', () => (stop.signal.aborted ? abort.abort() : stop.abort()));
  process.on('SIGTERM', () => abort.abort());

  const isTty = process.stdout.isTTY === true;
  let lastLineMs = 0;
  const print = (p: TrafficProgress): void => {
    if (isTty) process.stdout.write(`\r${progressLine(p, endpoint.httpUrl)}\x1b[K`);
    else if (p.done || p.elapsedMs - lastLineMs >= 1000) {
      lastLineMs = p.elapsedMs;
      console.log(progressLine(p, endpoint.httpUrl));
    }
  };
  console.log(`simulating ${options.users} users at ${options.ratePerSec} events/s (seed ${options.seed}); Ctrl-C stops`);
  const result = await runTraffic({
    simulation: new TrafficSimulation({ users: options.users, seed: options.seed, userPrefix: `cli${options.seed.toString(36)}` }),
    send: (event) => client.producer.send(activityTopic, event, { key: event.userId }),
    ratePerSec: options.ratePerSec,
    maxEvents: options.maxEvents,
    durationMs: options.durationMs,
    stopSignal: stop.signal,
    signal: abort.signal,
    onProgress: print,
  });
  if (isTty) process.stdout.write('\n');
  await client.close();
  if (result.failed > 0) console.error(`${result.failed} events failed: ${String((result.lastError as Error)?.message ?? result.lastError)}`);
  console.log(`done: ${result.acked} of ${result.sent} events acknowledged`);
  process.exitCode = result.failed > 0 || result.acked < result.sent ? 1 : 0;
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
