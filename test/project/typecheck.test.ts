/**
 * The whole repository type-checks (strict TypeScript, `tsc -b` over every
 * workspace and the tests): tsx runs code without checking types, so this is
 * where a type error fails `npm test`.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';

const root = new URL('../..', import.meta.url).pathname;

test('tsc -b reports no type errors', { timeout: 300_000 }, () => {
  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
  const result = spawnSync(process.execPath, [tsc, '-b', '--pretty', 'false'], { cwd: root, encoding: 'utf8' });
  const errors = `${result.stdout}${result.stderr}`.split('\n').filter((l) => /error TS\d+/.test(l));
  assert.deepEqual(errors.slice(0, 30), [], `${errors.length} type errors`);
  assert.equal(result.status, 0, result.stdout + result.stderr);
});
