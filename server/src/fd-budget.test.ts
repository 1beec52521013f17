import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ConfigError } from './config-error.ts';
import { DescriptorShortageLog, fdLimitFor, fdReserve, fitLimitsToFdBudget, parseOpenFilesLimit, planFdBudget, readFdLimit } from './fd-budget.ts';
import { defaultLimits, FALLBACK_FD_LIMIT, validateLimits } from './limits.ts';

const PROC_LIMITS = `Limit                     Soft Limit           Hard Limit           Units
Max cpu time              unlimited            unlimited            seconds
Max open files            1024                 524288               files
Max locked memory         8388608              8388608              bytes
`;

test('the soft open-file limit is read from /proc/self/limits; unreadable or odd: the fallback', () => {
  assert.equal(parseOpenFilesLimit(PROC_LIMITS), 1024, 'soft, not hard');
  assert.equal(parseOpenFilesLimit(PROC_LIMITS.replace('1024  ', 'unlimited')), Infinity);
  assert.equal(parseOpenFilesLimit('Max cpu time unlimited unlimited seconds\n'), null);
  assert.equal(parseOpenFilesLimit('Max open files  -3  5 files'), null);
  assert.deepEqual(readFdLimit(() => PROC_LIMITS), { soft: 1024, source: '/proc/self/limits' });
  assert.deepEqual(readFdLimit(() => { throw Object.assign(new Error('ENOENT'), { code: 'ENOENT' }); }), { soft: FALLBACK_FD_LIMIT, source: 'fallback' });
  if (process.platform === 'linux') assert.equal(readFdLimit().source, '/proc/self/limits');
});

test('defaults derived from the limit (table): connections + files + reserve <= limit', () => {
  const cases: [number, { reserve: number; maxConnections: number; maxOpenFiles: number }][] = [
    [256, { reserve: 64, maxConnections: 144, maxOpenFiles: 48 }],
    [1024, { reserve: 64, maxConnections: 720, maxOpenFiles: 240 }],
    [20_000, { reserve: 1250, maxConnections: 17_726, maxOpenFiles: 1024 }],
    [1_048_576, { reserve: 65_536, maxConnections: 100_000, maxOpenFiles: 1024 }],
    [Infinity, { reserve: 64, maxConnections: 100_000, maxOpenFiles: 1024 }],
  ];
  for (const [limit, want] of cases) {
    const plan = planFdBudget(defaultLimits, limit);
    assert.ok(plan.ok);
    const { reserve, maxConnections, maxOpenFiles } = plan.value;
    assert.deepEqual({ reserve, maxConnections, maxOpenFiles }, want, `limit ${limit}`);
  }
});

test('property: the fitted limits fit, never exceed what was asked, are kept when they fit, and keep at least 16 files', () => {
  fc.assert(fc.property(fc.integer({ min: 81, max: 2_000_000 }), fc.integer({ min: 1, max: 200_000 }), fc.integer({ min: 16, max: 100_000 }), (limit, maxConnections, maxOpenFiles) => {
    const plan = planFdBudget({ maxConnections, maxOpenFiles }, limit);
    assert.ok(plan.ok);
    const b = plan.value;
    assert.ok(b.maxConnections + b.maxOpenFiles + b.reserve <= limit);
    assert.ok(b.maxConnections >= 1 && b.maxConnections <= maxConnections && b.maxOpenFiles >= 16 && b.maxOpenFiles <= maxOpenFiles);
    const fits = maxConnections + maxOpenFiles + fdReserve(limit) <= limit;
    assert.equal(b.lowered === null, fits);
    if (fits) assert.deepEqual([b.maxConnections, b.maxOpenFiles], [maxConnections, maxOpenFiles]);
    const needed = fdLimitFor(maxConnections, maxOpenFiles);
    const atNeeded = planFdBudget({ maxConnections, maxOpenFiles }, needed);
    assert.ok(atNeeded.ok && atNeeded.value.lowered === null, 'the advised limit keeps them');
    const below = planFdBudget({ maxConnections, maxOpenFiles }, needed - 1);
    assert.ok(!below.ok || below.value.lowered !== null, 'and is the smallest that does');
  }), { numRuns: 500 });
});

test('start-up check: lowered defaults are an info line, lowered configured limits a warning with the limit to set, a tiny limit refuses to start', () => {
  const derived = fitLimitsToFdBudget(defaultLimits, { soft: 1024, source: '/proc/self/limits' });
  assert.deepEqual([derived.limits.maxConnections, derived.limits.maxOpenFiles, derived.isWarning], [720, 240, false]);
  assert.match(derived.line, /limit 1024 \(soft RLIMIT_NOFILE\): maxConnections 720, maxOpenFiles 240, reserve 64 \(derived: the defaults maxConnections 100000 and maxOpenFiles 1024 do not fit; to keep them raise the limit to 107758/);
  assert.equal(derived.limits.maxBatchBytes, defaultLimits.maxBatchBytes, 'other limits untouched');

  const configured = fitLimitsToFdBudget(validateLimits({ maxConnections: 5000 }), { soft: 1024, source: '/proc/self/limits' });
  assert.equal(configured.isWarning, true);
  assert.match(configured.line, /WARNING: lowered: the configured maxConnections 5000 and maxOpenFiles 1024/);

  const fits = fitLimitsToFdBudget(validateLimits({ maxConnections: 20, maxOpenFiles: 940 }), { soft: 1024, source: '/proc/self/limits' });
  assert.deepEqual([fits.limits.maxConnections, fits.limits.maxOpenFiles, fits.isWarning, fits.budget.lowered], [20, 940, false, null], 'a fitting configuration is kept as is');
  const files = fitLimitsToFdBudget(validateLimits({ maxConnections: 20 }), { soft: 1024, source: '/proc/self/limits' });
  assert.deepEqual([files.limits.maxConnections, files.limits.maxOpenFiles], [20, 940], 'files take what few connections leave');

  assert.throws(() => fitLimitsToFdBudget(defaultLimits, { soft: 64, source: '/proc/self/limits' }), (e: unknown) => e instanceof ConfigError && /ulimit -n\) is 64.*raise it to at least 81/.test(e.message));
  assert.match(fitLimitsToFdBudget(defaultLimits, { soft: FALLBACK_FD_LIMIT, source: 'fallback' }).line, /assumed/);
});

test('out-of-descriptor lines are rate-bounded and count the refusals they stand for', () => {
  const lines: string[] = [];
  const log = new DescriptorShortageLog((l) => lines.push(l), 10_000);
  log.report({ errno: 'EMFILE', path: '/d/a.log' }, 0);
  for (let t = 1; t < 100; t++) log.report({ errno: 'EMFILE', path: `/d/${t}.log` }, t * 50);
  log.report({ errno: 'ENFILE', path: '/d/z.log' }, 10_000);
  assert.equal(lines.length, 2);
  assert.match(lines[0], /out of file descriptors \(EMFILE\): an open was refused with LIMIT_EXCEEDED \(retryable\), last \/d\/a.log/);
  assert.match(lines[1], /system is out of file descriptors \(ENFILE\): 100 opens were refused/);
});
