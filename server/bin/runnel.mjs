#!/usr/bin/env node
// `runnel` launcher (`npx runnel` after `npm ci`): runs the compiled CLI, dist/cli.js, in plain Node.
// dist/ is built by `npm run build`, which `npm ci` runs through the root `prepare` script and
// `npm start` runs before starting. A process started with the `runnel-source` export condition
// (`npm test`, `npm run bench`: they run the TypeScript sources through tsx) resolves every
// @runnel package to its src/*.ts, so there the launcher runs src/cli.ts through tsx instead,
// rather than the compiled CLI importing TypeScript sources Node cannot load.
function resolvesToSource() {
  try {
    return import.meta.resolve('@runnel/server').endsWith('.ts');
  } catch {
    return false; // dist/ missing: the compiled CLI's import below says so
  }
}

const isSource = resolvesToSource();
if (isSource) {
  const { register } = await import('tsx/esm/api');
  register();
}
const cli = new URL(isSource ? '../src/cli.ts' : '../dist/cli.js', import.meta.url);
let runCli;
try {
  ({ runCli } = await import(cli.href));
} catch (error) {
  if (isSource || error?.code !== 'ERR_MODULE_NOT_FOUND' || !String(error.message).includes('/dist/')) throw error;
  console.error(`error: runnel is not built (${error.message}): run \`npm run build\` in the repository`);
  process.exit(1);
}
await runCli(process.argv.slice(2));
