/**
 * Child process for crash tests and benchmarks: starts a broker on port 0
 * with the data dir in argv[2] and prints `{"port":N}` on stdout once
 * listening. Killed with SIGKILL by the parent, or SIGTERM for a clean stop.
 */
import { startServer } from '../../server/src/server.ts';
import { validateLimits } from '../../server/src/limits.ts';

const dataDir = process.argv[2];
if (!dataDir) throw new Error('usage: broker-child.ts <dataDir> [limitsJson]');
const limits = validateLimits(process.argv[3] ? JSON.parse(process.argv[3]) : {});
const server = await startServer({
  brokerId: 0, dataDir, host: '127.0.0.1', port: 0, autoCreateTopics: true, defaultPartitions: 1, flushIntervalMs: 0, limits,
}, { log: (line) => process.stderr.write(`${line}\n`) });
process.stdout.write(`${JSON.stringify({ port: server.port })}\n`);
process.on('SIGTERM', () => void server.close().then(() => process.exit(0)));
