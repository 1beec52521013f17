/**
 * `runnel start [config flags]`: loads the configuration (config.ts), starts
 * the broker (server.ts) and shuts it down gracefully on SIGTERM/SIGINT:
 * stop accepting, finish in-flight appends, fsync, close sockets with 1001;
 * then exit 0. A second signal exits at once with status 1. With TLS, SIGHUP
 * reloads the certificate and key files (server/src/tls.ts).
 */
import { loadConfig } from '../config.ts';
import { startServer } from '../server.ts';
import { uwsIsNative } from '../broker/uws.ts';

export async function runStartCommand(args: string[]): Promise<void> {
  const config = loadConfig(args, process.env);
  const server = await startServer(config);
  console.log(`runnel: ready at ${server.url}  data ${config.dataDir}  uWebSockets.js ${uwsIsNative ? 'native' : 'FALLBACK (slow)'}${config.staticDir ? `  static ${config.staticDir}` : ''}`);
  let stopping = false;
  const shutdown = (signal: NodeJS.Signals) => {
    if (stopping) {
      console.error(`runnel: second ${signal}, exiting without a graceful shutdown`);
      process.exit(1);
    }
    stopping = true;
    console.log(`runnel: ${signal}: shutting down (finishing in-flight appends)`);
    server.close().then(
      () => {
        console.log('runnel: stopped');
        process.exit(0);
      },
      (error: unknown) => {
        console.error('runnel: shutdown failed', error);
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', shutdown);
  process.on('SIGINT', shutdown);
  // With TLS, SIGHUP re-validates and reloads the certificate files (server/src/tls.ts); the listen socket stays open.
  if (server.reloadTls) process.on('SIGHUP', () => server.reloadTls?.());
}
