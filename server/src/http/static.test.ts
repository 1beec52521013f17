import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { staticFilePath } from './static.ts';
import { appFixture } from './testing/app-fixture.ts';

const root = mkdtempSync(join(tmpdir(), 'runnel-static-'));
const site = join(root, 'site');
mkdirSync(join(site, 'demo'), { recursive: true });
writeFileSync(join(site, 'index.html'), '<h1>home</h1>');
writeFileSync(join(site, 'demo', 'index.html'), '<h1>demo</h1>');
writeFileSync(join(site, 'app.js'), 'console.log(1)');
writeFileSync(join(root, 'secret.txt'), 'secret');
after(() => rmSync(root, { recursive: true, force: true }));

test('serves index.html, nested index, assets with content types', async () => {
  const { app } = appFixture({ deps: { staticDir: site } });
  const home = await app.request('/');
  assert.equal(home.status, 200);
  assert.equal(home.headers.get('content-type'), 'text/html; charset=utf-8');
  assert.equal(await home.text(), '<h1>home</h1>');
  assert.equal(await (await app.request('/demo/')).text(), '<h1>demo</h1>');
  assert.equal(await (await app.request('/demo')).text(), '<h1>demo</h1>');
  const js = await app.request('/app.js');
  assert.equal(js.headers.get('content-type'), 'text/javascript; charset=utf-8');
  assert.equal((await app.request('/missing.css')).status, 404);
  assert.equal((await app.request('/v1/topics')).status, 200, 'API routes are not shadowed');
});

test('no path traversal', async () => {
  const { app } = appFixture({ deps: { staticDir: site } });
  for (const path of ['/../secret.txt', '/%2e%2e/secret.txt', '/demo/..%2f..%2fsecret.txt', '/..%5csecret.txt', '/%00index.html', '/%E0%A4%A']) {
    const res = await app.request(path);
    assert.equal(res.status, 404, path);
    assert.doesNotMatch(await res.text(), /"secret"|^secret$/);
  }
  assert.equal(staticFilePath(site, '/../secret.txt'), null);
  assert.equal(staticFilePath(site, '/a/%2e%2e/%2e%2e/secret.txt'), null);
  assert.equal(staticFilePath(site, '/app.js'), join(site, 'app.js'));
});

test('without staticDir nothing is served from disk', async () => {
  const { app } = appFixture();
  assert.equal((await app.request('/')).status, 404);
});
