import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { NamePatternSet, matchesPattern } from './name-pattern.ts';

/** Reference glob matcher by dynamic programming over (pattern, name) prefixes: obviously right, slow. */
function referenceMatch(pattern: string, name: string): boolean {
  let row = new Array<boolean>(name.length + 1).fill(false);
  row[0] = true;
  for (const p of pattern) {
    const next = new Array<boolean>(name.length + 1).fill(false);
    if (p === '*') {
      for (let j = 0; j <= name.length; j++) next[j] = row[j] || (j > 0 && next[j - 1]);
    } else {
      for (let j = 1; j <= name.length; j++) next[j] = row[j - 1] && name[j - 1] === p;
    }
    row = next;
  }
  return row[name.length];
}

test('literal, prefix, suffix, infix and match-all patterns', () => {
  const table: [string, string, boolean][] = [
    ['clicks', 'clicks', true],
    ['clicks', 'click', false],
    ['clicks', 'clicks2', false],
    ['activity.*', 'activity.clicks', true],
    ['activity.*', 'activity.', true],
    ['activity.*', 'activity', false],
    ['activity.*', 'activity.a.b', true],
    ['activity.*', 'xactivity.clicks', false],
    ['*.errors', 'payments.errors', true],
    ['*.errors', 'payments.errors.old', false],
    ['tenant-*.events', 'tenant-42.events', true],
    ['tenant-*.events', 'tenant-.events', true],
    ['tenant-*.events', 'tenant-42.event', false],
    ['a*b*c', 'abc', true],
    ['a*b*c', 'aXbYc', true],
    ['a*b*c', 'acb', false],
    ['a*a', 'a', false],
    ['a*a', 'aa', true],
    ['*', '', true],
    ['*', 'anything.at.all', true],
    ['**', 'x', true],
    ['a**b', 'ab', true],
  ];
  for (const [pattern, name, expected] of table) {
    assert.equal(matchesPattern(pattern, name), expected, `${pattern} vs ${name}`);
  }
});

test('a set matches when any pattern does; the empty set matches nothing', () => {
  const set = NamePatternSet.compile(['clicks', 'activity.*', '*.errors']);
  assert.ok(set.matches('clicks'));
  assert.ok(set.matches('activity.page'));
  assert.ok(set.matches('x.errors'));
  assert.ok(!set.matches('views'));
  assert.ok(!NamePatternSet.empty.matches(''));
  assert.ok(!NamePatternSet.empty.matches('clicks'));
  assert.ok(NamePatternSet.empty.isEmpty);
  assert.ok(NamePatternSet.compile(['a', '*']).matchesAll);
  assert.deepEqual(set.patterns, ['clicks', 'activity.*', '*.errors']);
});

const alphabet = fc.constantFrom('a', 'b', '.');
const name = fc.array(alphabet, { maxLength: 12 }).map((cs) => cs.join(''));
const pattern = fc.array(fc.constantFrom('a', 'b', '.', '*'), { maxLength: 10 }).map((cs) => cs.join(''));

test('property: the matcher agrees with the reference glob matcher', () => {
  fc.assert(fc.property(pattern, name, (p, n) => {
    assert.equal(matchesPattern(p, n), referenceMatch(p, n), `${JSON.stringify(p)} vs ${JSON.stringify(n)}`);
  }), { numRuns: 5000 });
});

test('property: a pattern without * matches exactly itself', () => {
  fc.assert(fc.property(name, name, (p, n) => {
    assert.equal(matchesPattern(p, n), p === n);
  }));
});

test('property: a set matches exactly when one of its patterns does', () => {
  fc.assert(fc.property(fc.array(pattern, { maxLength: 5 }), name, (ps, n) => {
    assert.equal(NamePatternSet.compile(ps).matches(n), ps.some((p) => referenceMatch(p, n)));
  }));
});

test('property: every name matches the pattern made of its own pieces around stars', () => {
  fc.assert(fc.property(name, fc.array(fc.nat(12), { maxLength: 4 }), (n, cuts) => {
    // Replace some slices of n by '*': the result must still match n.
    const sorted = [...new Set(cuts.map((c) => Math.min(c, n.length)))].sort((a, b) => a - b);
    let p = '';
    let at = 0;
    for (let i = 0; i + 1 < sorted.length; i += 2) {
      p += `${n.slice(at, sorted[i])}*`;
      at = sorted[i + 1];
    }
    p += n.slice(at);
    assert.ok(matchesPattern(p, n), `${p} vs ${n}`);
  }));
});

test('adversarial inputs for backtracking matchers finish (no regex, no backtracking)', () => {
  // Exponential for naive backtracking: a*a*a*...b against aaaa...a. Here it is a handful of indexOf calls.
  const p = `${'a*'.repeat(60)}b`;
  const n = 'a'.repeat(249);
  assert.equal(matchesPattern(p, n), false);
  assert.equal(matchesPattern(p, `${n}b`), true);
});
