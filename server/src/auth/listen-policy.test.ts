import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isLoopbackHost, listenPolicyProblem } from './listen-policy.ts';

test('loopback hosts', () => {
  for (const host of ['localhost', 'LOCALHOST', '127.0.0.1', '127.1.2.3', '::1', '[::1]', '::ffff:127.0.0.1']) assert.ok(isLoopbackHost(host), host);
  for (const host of ['0.0.0.0', '::', '10.0.0.1', '192.168.1.1', 'example.com', '127.0.0', '127.0.0.256', '128.0.0.1', 'localhost.example.com', 'api.localhost', '']) assert.ok(!isLoopbackHost(host), host);
});

test('without auth only loopback is allowed, unless --insecure', () => {
  assert.equal(listenPolicyProblem({ host: '127.0.0.1', authMode: 'anonymous', insecure: false }), null);
  assert.equal(listenPolicyProblem({ host: '0.0.0.0', authMode: 'token', insecure: false }), null);
  assert.equal(listenPolicyProblem({ host: '0.0.0.0', authMode: 'anonymous', insecure: true }), null);
  assert.match(listenPolicyProblem({ host: '0.0.0.0', authMode: 'anonymous', insecure: false }) ?? '', /refusing to listen on 0.0.0.0 without auth.*--insecure/);
});
