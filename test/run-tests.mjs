#!/usr/bin/env node
// `npm test`: installs what the tests need from Debian when it is missing
// (Chromium for the browser tests), then runs every `*.test.ts` in the
// workspaces with `node --test` + tsx, keeping node's default reporter so CI
// can read the closing summary. Extra args filter files by substring:
// `npm test -- log` runs only test files whose path contains "log".
// Tests run the TypeScript sources, not dist/: NODE_OPTIONS carries the
// `runnel-source` export condition (each package's `exports` map it to
// src/*.ts), so the test files and every node process they spawn (brokers,
// crash children, the `runnel` bin) resolve @runnel/* to the sources with no
// build step. test/project/compiled-start.test.ts builds dist/ and runs it
// without the condition.
import { execSync, spawn } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const roots = ['client-sdk/src', 'server/src', 'worker/src', 'demo/src', 'test'];

function findTests(dir, out) {
  if (!existsSync(dir)) return out;
  for (const name of readdirSync(dir)) {
    if (name === 'node_modules' || name === 'artifacts') continue;
    const path = join(dir, name);
    if (statSync(path).isDirectory()) findTests(path, out);
    else if (name.endsWith('.test.ts')) out.push(relative(root, path));
  }
  return out;
}

function ensureDebianPackage(binary, pkg) {
  if (existsSync(binary)) return;
  console.log(`# ${binary} missing: installing Debian package ${pkg}`);
  const sudo = process.getuid && process.getuid() === 0 ? '' : 'sudo ';
  execSync(`${sudo}apt-get update -qq && ${sudo}env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ${pkg}`, { stdio: 'inherit' });
}

const filters = process.argv.slice(2);
const files = roots.flatMap((r) => findTests(join(root, r), [])).filter((f) => filters.length === 0 || filters.some((x) => f.includes(x))).sort();
if (files.length === 0) {
  console.error('no test files matched');
  process.exit(1);
}
if (files.some((f) => f.includes('browser') || f.startsWith('test/e2e') || f.startsWith('demo/'))) {
  ensureDebianPackage('/usr/bin/chromium', 'chromium');
}
// The cluster tests run a real etcd (server/src/cluster, server/src/replication, test/cluster).
if (files.some((f) => f.includes('cluster') || f.includes('etcd'))) {
  ensureDebianPackage('/usr/bin/etcd', 'etcd-server');
}

// Watchdog: a test file whose process never exits would hang CI silently; fail loudly instead.
const WATCHDOG_MS = Number(process.env.RUNNEL_TEST_WATCHDOG_MS ?? 45 * 60 * 1000);
const nodeOptions = [process.env.NODE_OPTIONS, '--conditions=runnel-source'].filter(Boolean).join(' ');
// Node 20 applies --test-timeout to each file as a whole: a file that hangs fails by name after FILE_TIMEOUT_MS
// while the other files go on, rather than the watchdog killing the whole run.
const FILE_TIMEOUT_MS = Number(process.env.RUNNEL_TEST_FILE_TIMEOUT_MS ?? 20 * 60 * 1000);
// Off a terminal (CI) the TAP stream is piped through so that the names of the failed tests are repeated just
// before node's closing summary: CI keeps only the tail of the output, and a failure 500 tests up is otherwise lost.
const piped = !process.stdout.isTTY;
const child = spawn(process.execPath, ['--import', 'tsx', '--test', '--test-concurrency=2', `--test-timeout=${FILE_TIMEOUT_MS}`, ...files], {
  cwd: root,
  stdio: ['inherit', piped ? 'pipe' : 'inherit', 'inherit'],
  env: { ...process.env, NODE_OPTIONS: nodeOptions, RUNNEL_TEST: '1' },
});
if (piped) repeatFailuresBeforeSummary(child.stdout, process.stdout);

/** Passes TAP through line by line; keeps each top-level `not ok` with its YAML block (capped) and writes them as
 *  `#` comments before the `# tests N` line, which stays where node put it. */
function repeatFailuresBeforeSummary(input, output) {
  const failures = [];
  let current = null;
  let pending = '';
  const onLine = (line) => {
    if (/^# tests \d+$/.test(line) && failures.length > 0) {
      output.write(`# ---- ${failures.length} failed (repeated from above) ----\n`);
      for (const f of failures) output.write(f.map((l) => `# ${l}\n`).join(''));
      failures.length = 0;
    }
    output.write(line + '\n');
    if (line.startsWith('not ok ')) {
      current = [line];
      failures.push(current);
    } else if (current !== null && (line.startsWith('  ') || line === '')) {
      if (current.length < 40) current.push(line);
    } else current = null;
  };
  input.setEncoding('utf8');
  input.on('data', (chunk) => {
    pending += chunk;
    let nl;
    while ((nl = pending.indexOf('\n')) !== -1) {
      onLine(pending.slice(0, nl));
      pending = pending.slice(nl + 1);
    }
  });
  input.on('end', () => {
    if (pending !== '') output.write(pending);
  });
}
const watchdog = setTimeout(() => {
  console.error(`\n# test run exceeded ${WATCHDOG_MS} ms: a test process did not exit; killing it`);
  child.kill('SIGKILL');
}, WATCHDOG_MS);
child.on('close', (code, signal) => {
  clearTimeout(watchdog);
  process.exit(code ?? (signal ? 1 : 0));
});
