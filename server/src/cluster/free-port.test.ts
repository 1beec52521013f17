import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { test } from 'node:test';
import { freeRestartablePort, release, restartablePortSpan } from './free-port.ts';

test('restartablePortSpan: below the kernel local port range, from 20000; none when the range leaves no room or is unreadable', () => {
  assert.deepEqual(restartablePortSpan('32768\t60999\n'), { min: 20_000, max: 32_767 });
  assert.deepEqual(restartablePortSpan('1024 65535'), null);
  assert.deepEqual(restartablePortSpan('20001 65535'), null);
  assert.deepEqual(restartablePortSpan(null), null);
  assert.deepEqual(restartablePortSpan('garbage'), null);
});

test('freeRestartablePort: a bindable port below the local port range, skipping one that is taken', async () => {
  // NB: the taken port is one handed out to this process (a fixed one could be another test's, reserved and
  // checked free but not bound yet: this listen would take it from that test's broker). Bound here, its
  // reservation is dropped, so the pick below meets it taken by the bind check, not by the reservation.
  const takenPort = await freeRestartablePort();
  const taken = createServer();
  await new Promise<void>((resolve, reject) => { taken.once('error', reject); taken.listen(takenPort, '127.0.0.1', resolve); });
  release(takenPort);
  try {
    const range = restartablePortSpan(await import('node:fs/promises').then((fs) => fs.readFile('/proc/sys/net/ipv4/ip_local_port_range', 'utf8')).catch(() => null));
    // The first candidate is the taken port; the ones after it are free (or reserved elsewhere: skipped).
    const picks = range ? [(takenPort - range.min + 0.5) / (range.max - range.min + 1)] : [];
    const port = await freeRestartablePort(() => picks.shift() ?? Math.random());
    assert.notEqual(port, takenPort);
    if (range) assert.ok(port >= range.min && port <= range.max, `${port} in [${range.min}, ${range.max}]`);
    const s = createServer();
    await new Promise<void>((resolve, reject) => { s.once('error', reject); s.listen(port, '127.0.0.1', resolve); });
    s.close();
  } finally {
    taken.close();
  }
});

test('freeRestartablePort never hands out a port twice in one process, though it is still free to bind', async () => {
  const stuck = () => 0.5; // every candidate is the same port
  const first = await freeRestartablePort(stuck);
  const second = await freeRestartablePort(stuck);
  assert.notEqual(second, first, 'the second pick must not be the port already handed out (not bound yet)');
});

test('reserve: a port another live process reserved is refused; one whose owner is gone is taken over; the owner\'s exit releases it', async () => {
  const { mkdtempSync, writeFileSync, existsSync, readFileSync } = await import('node:fs');
  const { spawn, spawnSync } = await import('node:child_process');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const { reserve, release, reservationDir } = await import('./free-port.ts');
  const saved = reservationDir.path;
  reservationDir.path = mkdtempSync(join(tmpdir(), 'runnel-ports-test-'));
  const live = spawn('sleep', ['30']);
  try {
    writeFileSync(join(reservationDir.path, '24001'), String(live.pid));
    assert.equal(reserve(24_001), false, 'held by a live process');
    const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']);
    writeFileSync(join(reservationDir.path, '24002'), String(dead.stdout));
    assert.equal(reserve(24_002), true, 'its owner exited: taken over');
    assert.equal(readFileSync(join(reservationDir.path, '24002'), 'utf8'), String(process.pid));
    assert.equal(reserve(24_002), false, 'this process holds it already');
    release(24_002);
    assert.equal(existsSync(join(reservationDir.path, '24002')), false, 'release removes the file');
    // A child that reserves and exits normally leaves no file behind.
    const url = new URL('./free-port.ts', import.meta.url).href;
    const child = spawnSync(process.execPath, ['--conditions=runnel-source', '--import', 'tsx', '--input-type=module', '-e',
      `const m = await import(${JSON.stringify(url)}); m.reservationDir.path = ${JSON.stringify(reservationDir.path)}; if (!m.reserve(24003)) process.exit(3); process.stdout.write('held')`], { encoding: 'utf8' });
    assert.equal(child.stdout, 'held', child.stderr);
    assert.equal(existsSync(join(reservationDir.path, '24003')), false, 'released at the owner\'s exit');
  } finally {
    live.kill();
    reservationDir.path = saved;
  }
});
