// Run by conformance.test.ts in a vitest 4 child process (the suite is vitest code): the pinned
// Durable Streams conformance suite against the broker at CONFORMANCE_TEST_URL.
import { runConformanceTests } from '@durable-streams/server-conformance-tests';

const baseUrl = process.env.CONFORMANCE_TEST_URL;
if (!baseUrl) throw new Error('CONFORMANCE_TEST_URL is required (conformance.test.ts sets it)');
runConformanceTests({ baseUrl, longPollTimeoutMs: Number(process.env.CONFORMANCE_LONG_POLL_MS ?? 20000) });
