/**
 * `npm start` runs compiled JavaScript: the build (`npm run build`'s tsc -b)
 * emits each package's dist/, and the broker `npm start` runs, plus the
 * `runnel` bin against it, work in plain Node with no TypeScript loader and
 * without the `runnel-source` export condition the tests run under. Every
 * module they load is recorded (module-log.mjs) and must be JavaScript:
 * dist/ of @runnel/server and @runnel/client, never a `.ts` file or tsx.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../..', import.meta.url));
const moduleLog = fileURLToPath(new URL('./module-log.mjs', import.meta.url));
const scripts = (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts;
const dir = mkdtempSync(join(tmpdir(), 'runnel-compiled-start-'));
const brokerLog = join(dir, 'broker-modules.log');
const binLog = join(dir, 'bin-modules.log');
let broker: ChildProcess | undefined;
let url = '';

/** Plain Node: no NODE_OPTIONS (so neither `--conditions=runnel-source` nor a loader from `npm test`), every module logged. */
function plainNodeEnv(logFile: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, RUNNEL_REQUIRE_NATIVE_UWS: '1', RUNNEL_MODULE_LOG: logFile };
  delete env.NODE_OPTIONS;
  return env;
}

/** `npm start` is `npm run build && node <entry> start`: returns `<entry>`. */
function startEntry(): string {
  const match = /^npm run build && node (\S+\.js) start$/.exec(scripts.start);
  assert.ok(match, `npm start runs the build, then a compiled .js entry with plain node: ${scripts.start}`);
  return match[1];
}

function loadedModules(logFile: string): string[] {
  return readFileSync(logFile, 'utf8').split('\n').filter(Boolean);
}

/** `npm run build` starts with `tsc <args> && ...`: returns `<args>` (the packages' build; the demo is not needed here). */
function tscBuildArgs(): string[] {
  const match = /^tsc (-b [^&]+?) && /.exec(scripts.build);
  assert.ok(match, `npm run build starts with tsc -b: ${scripts.build}`);
  return match[1].split(' ');
}

before(async () => {
  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
  const build = spawnSync(process.execPath, [tsc, ...tscBuildArgs(), '--pretty', 'false'], { cwd: root, encoding: 'utf8' });
  assert.equal(build.status, 0, `tsc ${tscBuildArgs().join(' ')} failed:\n${build.stdout}${build.stderr}`);
  const args = ['--import', moduleLog, startEntry(), 'start', '--port', '0', '--host', '127.0.0.1', '--data', join(dir, 'data'), '--static-dir', ''];
  const child = spawn(process.execPath, args, { cwd: root, env: plainNodeEnv(brokerLog) });
  broker = child;
  url = await new Promise<string>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`broker did not start: ${out}`)), 60_000);
    const onData = (d: Buffer) => {
      out += d;
      const m = /ready at (http:\/\/\S+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`broker exited with ${code}: ${out}`));
    });
  });
}, { timeout: 300_000 });

after(async () => {
  if (broker && broker.exitCode === null) {
    const exited = new Promise((r) => broker!.once('exit', r));
    broker.kill('SIGTERM');
    await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
    if (broker.exitCode === null) broker.kill('SIGKILL');
  }
  rmSync(dir, { recursive: true, force: true });
});

test('the broker npm start runs answers /healthz, having loaded only compiled JavaScript', async () => {
  const response = await fetch(`${url}/healthz`);
  assert.equal(response.status, 200);
  assert.deepEqual(await response.json(), { status: 'ok' });
  const modules = loadedModules(brokerLog);
  assert.ok(modules.includes(new URL(startEntry(), `file://${root}`).href), `the entry was loaded:\n${modules.join('\n')}`);
  assert.ok(modules.some((m) => m.endsWith('/client-sdk/dist/codec/index.js')), `@runnel/client/codec resolved to client-sdk/dist:\n${modules.join('\n')}`);
  assert.deepEqual(modules.filter((m) => /\.[mc]?tsx?$/.test(m) || m.includes('/tsx/')), [], 'no TypeScript file and no tsx loaded');
});

test('the runnel bin runs the compiled CLI against it', async () => {
  const bin = join(root, 'server/bin/runnel.mjs');
  const run = (args: string[]) => spawnSync(process.execPath, ['--import', moduleLog, bin, '--url', url, ...args], { cwd: root, encoding: 'utf8', env: plainNodeEnv(binLog), timeout: 30_000 });
  const created = run(['topic', 'create', 'compiled', '--partitions', '2']);
  assert.equal(created.status, 0, created.stderr);
  const listed = run(['--json', 'topic', 'list']);
  assert.equal(listed.status, 0, listed.stderr);
  assert.deepEqual((JSON.parse(listed.stdout) as { topics: { name: string }[] }).topics.map((t) => t.name), ['compiled']);
  const modules = loadedModules(binLog);
  assert.ok(modules.some((m) => m.endsWith('/server/dist/cli.js')), `the bin loaded server/dist/cli.js:\n${modules.join('\n')}`);
  assert.deepEqual(modules.filter((m) => /\.[mc]?tsx?$/.test(m) || m.includes('/tsx/')), [], 'no TypeScript file and no tsx loaded');
});
