import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { test } from 'node:test';
import { freeRestartablePort, restartablePortSpan } from './free-port.ts';

test('restartablePortSpan: below the kernel local port range, from 20000; none when the range leaves no room or is unreadable', () => {
  assert.deepEqual(restartablePortSpan('32768\t60999\n'), { min: 20_000, max: 32_767 });
  assert.deepEqual(restartablePortSpan('1024 65535'), null);
  assert.deepEqual(restartablePortSpan('20001 65535'), null);
  assert.deepEqual(restartablePortSpan(null), null);
  assert.deepEqual(restartablePortSpan('garbage'), null);
});

test('freeRestartablePort: a bindable port below the local port range, skipping one that is taken', async (t) => {
  const taken = createServer();
  await new Promise<void>((resolve) => taken.listen(25_000, '127.0.0.1', resolve)).catch(() => t.skip('port 25000 is in use here'));
  try {
    // The first candidate is the taken port (random 0.4166… → 25000 in [20000, 32767]); the next one is free.
    const picks = [(25_000 - 20_000) / 12_768, 0.9];
    const port = await freeRestartablePort(() => picks.shift() ?? Math.random());
    assert.notEqual(port, 25_000);
    const range = restartablePortSpan(await import('node:fs/promises').then((fs) => fs.readFile('/proc/sys/net/ipv4/ip_local_port_range', 'utf8')).catch(() => null));
    if (range) assert.ok(port >= range.min && port <= range.max, `${port} in [${range.min}, ${range.max}]`);
    const s = createServer();
    await new Promise<void>((resolve, reject) => { s.once('error', reject); s.listen(port, '127.0.0.1', resolve); });
    s.close();
  } finally {
    taken.close();
  }
});
