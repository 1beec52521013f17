import { test } from 'node:test';
import assert from 'node:assert/strict';
import { OriginPolicy } from './origin-policy.ts';

test('default: no Origin, same origin and loopback origins only', () => {
  const p = new OriginPolicy([]);
  assert.equal(p.isAllowed(undefined), true, 'non-browser clients');
  assert.equal(p.isAllowed('http://localhost:5173'), true);
  assert.equal(p.isAllowed('http://127.0.0.1:3000'), true);
  assert.equal(p.isAllowed('http://[::1]:8080'), true);
  assert.equal(p.isAllowed('https://evil.example'), false);
  assert.equal(p.isAllowed('https://broker.example', 'broker.example'), true, 'same origin');
  assert.equal(p.isAllowed('https://broker.example.evil', 'broker.example'), false);
  assert.equal(p.isAllowed('null'), false, 'sandboxed frames and file: pages');
  assert.equal(p.isAllowed('chrome-extension://abc'), false);
});

test('a configured list replaces the loopback default; * allows any', () => {
  const p = new OriginPolicy(['https://app.example/']);
  assert.equal(p.isAllowed('https://app.example'), true);
  assert.equal(p.isAllowed('HTTPS://APP.EXAMPLE'), true);
  assert.equal(p.isAllowed('http://localhost:5173'), false, 'loopback is not implied once a list is configured');
  assert.equal(p.isAllowed('https://other.example'), false);
  assert.equal(new OriginPolicy(['*']).isAllowed('https://anything.example'), true);
});
