/**
 * `npm run bench [-- name...]`: runs each `test/bench/<name>.bench.ts` in its
 * own process (so one benchmark's heap and sockets do not skew the next).
 * Every benchmark prints human lines and, as its last line, one JSON object
 * `{"bench":"<name>",...figures}`. Benchmarks are not tests: they assert
 * nothing about speed, but they fail if uWebSockets.js is on its fallback.
 */
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const wanted = process.argv.slice(2);
const all = readdirSync(here).filter((f) => f.endsWith('.bench.ts')).map((f) => f.replace(/\.bench\.ts$/, '')).sort();
const selected = wanted.length === 0 ? all : all.filter((name) => wanted.includes(name));
if (selected.length === 0) {
  console.error(`no benchmark matches ${JSON.stringify(wanted)}; available: ${all.join(', ')}`);
  process.exit(1);
}
// The SDK benchmarks load the compiled client SDK, as a Node app does (sdk-clients.ts): built here, so never stale.
const root = join(here, '..', '..');
const build = spawnSync(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-b', join(root, 'client-sdk', 'tsconfig.build.json'), '--noCheck'], { stdio: 'inherit' });
if (build.status !== 0) {
  console.error('building client-sdk/dist failed');
  process.exit(1);
}
let failed = 0;
for (const name of selected) {
  console.log(`\n=== bench ${name} ===`);
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--expose-gc', join(here, `${name}.bench.ts`)], { stdio: 'inherit' });
  if (r.status !== 0) {
    failed++;
    console.error(`bench ${name} failed with status ${r.status}`);
  }
}
process.exit(failed === 0 ? 0 : 1);
