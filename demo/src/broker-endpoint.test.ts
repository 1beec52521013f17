import { test } from 'node:test';
import assert from 'node:assert/strict';
import { brokerEndpoint } from './broker-endpoint.ts';

test('derives the WebSocket endpoint from an HTTP or WebSocket URL', () => {
  assert.deepEqual(brokerEndpoint('http://localhost:8080'), { httpUrl: 'http://localhost:8080', webSocketUrl: 'ws://localhost:8080/v1/ws' });
  assert.deepEqual(brokerEndpoint('https://runnel.example/any/path'), { httpUrl: 'https://runnel.example', webSocketUrl: 'wss://runnel.example/v1/ws' });
  assert.deepEqual(brokerEndpoint('ws://127.0.0.1:9000/v1/ws'), { httpUrl: 'http://127.0.0.1:9000', webSocketUrl: 'ws://127.0.0.1:9000/v1/ws' });
  assert.throws(() => brokerEndpoint('ftp://x'), /http\(s\) or ws\(s\)/);
});
