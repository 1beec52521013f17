import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { ConfigError, loadConfig } from './config.ts';
import { defaultLimits } from './limits.ts';

function withConfigFile(content: string, fn: (path: string) => void): void {
  const dir = mkdtempSync(join(tmpdir(), 'runnel-config-'));
  try {
    const path = join(dir, 'runnel.json');
    writeFileSync(path, content);
    fn(path);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('defaults need no configuration', () => {
  const c = loadConfig([], {});
  assert.equal(c.port, 8080);
  assert.equal(c.host, '127.0.0.1', 'secure by default: loopback only (issue 11 finding 4)');
  assert.equal(c.dataDir, resolve('./data'));
  assert.equal(c.brokerId, 0);
  assert.equal(c.autoCreateTopics, true);
  assert.equal(c.defaultPartitions, 3);
  assert.equal(c.flushIntervalMs, 0);
  assert.deepEqual(c.corsOrigins, [], 'loopback origins and same-origin only');
  assert.equal(c.insecure, false);
  assert.equal(c.auth.mode, 'anonymous');
  assert.deepEqual(c.limits, defaultLimits);
});

test('auth flags switch to token mode; a key configured in anonymous mode is refused', () => {
  const c = loadConfig(['--auth-secret', 'x'.repeat(32), '--auth-issuer', 'https://issuer.example'], {});
  assert.equal(c.auth.mode, 'token');
  assert.deepEqual(c.auth.hs256Secrets, ['x'.repeat(32)]);
  assert.equal(c.auth.issuer, 'https://issuer.example');
  assert.equal(loadConfig([], { RUNNEL_AUTH_SECRET: 'y'.repeat(32) }).auth.mode, 'token');
  assert.equal(loadConfig(['--insecure'], {}).insecure, true);
});

test('precedence: flags > env > config file > defaults', () => {
  withConfigFile(JSON.stringify({ port: 7000, host: '127.0.0.1', defaultPartitions: 5, brokerId: 4 }), (path) => {
    const env = { RUNNEL_PORT: '7100', RUNNEL_DEFAULT_PARTITIONS: '6' };
    const c = loadConfig(['--config', path, '--port=7200'], env);
    assert.equal(c.port, 7200, 'flag wins');
    assert.equal(c.defaultPartitions, 6, 'env beats file');
    assert.equal(c.host, '127.0.0.1', 'file beats default');
    assert.equal(c.brokerId, 4);
    assert.equal(loadConfig([], { ...env, RUNNEL_CONFIG: path }).port, 7100);
  });
});

test('flag forms: --data, booleans, --no-x, lists, empty static dir', () => {
  const c = loadConfig(['--data', '/tmp/x', '--no-auto-create-topics', '--cors-origins', 'https://a.example, https://b.example', '--static-dir', ''], {});
  assert.equal(c.dataDir, '/tmp/x');
  assert.equal(c.autoCreateTopics, false);
  assert.deepEqual(c.corsOrigins, ['https://a.example', 'https://b.example']);
  assert.equal(c.staticDir, undefined);
  assert.equal(loadConfig(['--auto-create-topics', '--port', '1'], { RUNNEL_AUTO_CREATE_TOPICS: 'false' }).autoCreateTopics, true);
  assert.equal(loadConfig([], { RUNNEL_AUTO_CREATE_TOPICS: 'no', RUNNEL_DATA: '/d' }).autoCreateTopics, false);
});

test('bad values fail with messages naming the source and the rule', () => {
  const cases: [string[], NodeJS.ProcessEnv, RegExp][] = [
    [['--port', 'abc'], {}, /^--port must be an integer 0-65535, got 'abc'$/],
    [['--port', '70000'], {}, /--port must be an integer 0-65535, got '70000'/],
    [[], { RUNNEL_PORT: '8.5' }, /^RUNNEL_PORT must be an integer 0-65535, got '8.5'$/],
    [['--auto-create-topics=maybe'], {}, /--auto-create-topics must be true or false/],
    [['--default-partitions', '0'], {}, /--default-partitions must be an integer >= 1, got '0'/],
    [['--prot', '1'], {}, /unknown flag --prot; known flags: --port/],
    [['--port'], {}, /--port needs a value/],
    [['start'], {}, /unexpected argument 'start'/],
    [['--limit', 'maxHttpBodyBytes'], {}, /--limit expects name=value/],
    [['--limit', 'maxBogus=1'], {}, /unknown limit 'maxBogus'/],
    [['--limit', 'maxHttpBodyBytes=10'], {}, /limit maxHttpBodyBytes is out of range/],
    [['--limit', 'maxFrameBytes=4096'], {}, /maxFrameBytes \(4096\) must be >= maxBatchBytes/],
    [['--config', '/nonexistent/runnel.json'], {}, /cannot read config file \/nonexistent\/runnel.json/],
  ];
  for (const [argv, env, message] of cases) {
    assert.throws(() => loadConfig(argv, env), (e: unknown) => e instanceof ConfigError && message.test(e.message), `${argv.join(' ')} ${JSON.stringify(env)}`);
  }
});

test('config file: limits, bad JSON, unknown keys, wrong types', () => {
  withConfigFile(JSON.stringify({ limits: { maxHttpRecords: 50, maxLongPollMs: 100 } }), (path) => {
    const c = loadConfig(['--config', path, '--limit', 'maxHttpRecords=60'], {});
    assert.equal(c.limits.maxHttpRecords, 60, '--limit beats file');
    assert.equal(c.limits.maxLongPollMs, 100);
  });
  withConfigFile('{ nope', (path) => assert.throws(() => loadConfig(['--config', path], {}), /is not valid JSON/));
  withConfigFile('[1]', (path) => assert.throws(() => loadConfig(['--config', path], {}), /must hold a JSON object/));
  withConfigFile('{"prot": 1}', (path) => assert.throws(() => loadConfig(['--config', path], {}), /unknown key 'prot'/));
  withConfigFile('{"port": "80"}', (path) => assert.throws(() => loadConfig(['--config', path], {}), /: port must be an integer 0-65535, got '80'/));
  withConfigFile('{"limits": {"maxHttpRecords": "x"}}', (path) => assert.throws(() => loadConfig(['--config', path], {}), /limit maxHttpRecords is out of range or not an integer, got "x"/));
});
