// Issue 11 over real sockets: a poison value (valid JSON nested 10,000 deep, 20 KB) stored by a WebSocket and by a
// binary HTTP producer, between good records. HTTP fetch, SSE and `runnel consume` return it degraded and go on.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { encodeRecordBatch } from '@runnel/client/codec';
import { makeBatch, startTestServer, TestClient, type TestServer } from '../broker/harness.ts';

const root = fileURLToPath(new URL('../..', import.meta.url));
const bin = join(root, 'node_modules/.bin/runnel');
const poison = '['.repeat(10_000) + ']'.repeat(10_000);
const notUtf8 = new Uint8Array([0xff, 0x00, 0xfe]);
let server: TestServer;

before(async () => {
  server = await startTestServer({ limits: { sseKeepAliveMs: 200 } });
  const post = (path: string, body: string | Uint8Array<ArrayBuffer>, type: string) => fetch(`${server.url}${path}`, { method: 'POST', headers: { 'content-type': type }, body });
  assert.equal((await post('/v1/topics', JSON.stringify({ name: 'poison', partitions: 1 }), 'application/json')).status, 201);
  assert.equal((await post('/v1/topics/poison/records', JSON.stringify({ records: [{ value: { good: 0 } }] }), 'application/json')).status, 200);
  const ws = await TestClient.connect(server.wsUrl);
  try {
    const ack = await ws.produce('poison', 0, makeBatch([poison, '{"good":2}']));
    assert.equal(ack.type, 'produceAck', JSON.stringify(ack));
  } finally {
    ws.close();
  }
  const batch = encodeRecordBatch({ records: [{ value: new TextEncoder().encode(poison), timestampMs: Date.now() }, { value: new TextEncoder().encode('{"good":4}'), timestampMs: Date.now() }, { value: notUtf8, timestampMs: Date.now() }] }) as Uint8Array<ArrayBuffer>;
  assert.equal((await post('/v1/topics/poison/records?partition=0', batch, 'application/vnd.runnel.recordbatch')).status, 200);
});
after(async () => {
  await server?.stop();
});

type Read = { offset: number; value: unknown; valueEncoding?: string };
const expected = [[0, 'json', { good: 0 }], [1, 'text', poison], [2, 'json', { good: 2 }], [3, 'text', poison], [4, 'json', { good: 4 }], [5, 'base64', '/wD+']];
const shape = (records: Read[]) => records.map((r) => [r.offset, r.valueEncoding ?? 'json', r.value]);

test('fetch over a real socket returns the good records around a poison record, and the poison record degraded', async () => {
  const res = await fetch(`${server.url}/v1/topics/poison/partitions/0/records?offset=earliest`);
  assert.equal(res.status, 200, (await res.clone().text()).slice(0, 200));
  const read = await res.json();
  assert.deepEqual(shape(read.records), expected);
  assert.equal(read.nextOffset, 6);
  const fromPoison = await (await fetch(`${server.url}/v1/topics/poison/partitions/0/records?offset=3&maxRecords=1`)).json();
  assert.deepEqual(shape(fromPoison.records), [expected[3]]);
});

test('SSE over a real socket streams past a poison record', async () => {
  const res = await fetch(`${server.url}/v1/topics/poison/partitions/0/stream?offset=earliest`);
  assert.equal(res.status, 200);
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  let text = '';
  while (!/^id: 5$/m.test(text) && !text.includes('event: error')) {
    const { done, value } = await reader.read();
    if (done) break;
    text += decoder.decode(value, { stream: true });
  }
  await reader.cancel();
  assert.doesNotMatch(text, /event: error/);
  const records = text.split('\n\n').filter((e) => e.startsWith('id: ')).map((e) => JSON.parse(e.split('\n')[1].slice('data: '.length)) as Read);
  assert.deepEqual(shape(records), expected);
});

function runnel(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(bin, args, { cwd: root, env: { ...process.env, RUNNEL_URL: server.url } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`runnel ${args.join(' ')} timed out; stderr: ${stderr}`));
    }, 30_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    child.stdin.end();
  });
}

test('runnel consume prints a poison record and a non-UTF-8 one degraded and keeps going (--json and human)', async () => {
  const json = await runnel(['consume', 'poison', '--from', 'earliest', '--max', '6', '--json']);
  assert.equal(json.code, 0, json.stderr);
  assert.deepEqual(shape(json.stdout.trim().split('\n').map((l) => JSON.parse(l))), expected);
  const human = await runnel(['consume', 'poison', '--from', 'earliest', '--max', '6']);
  assert.equal(human.code, 0, human.stderr);
  assert.deepEqual(human.stdout.split('\n'), ['{"good":0}', poison, '{"good":2}', poison, '{"good":4}', 'base64:/wD+', '']);
  assert.match(human.stderr, /consumed 6 records/);
});
