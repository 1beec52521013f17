#!/usr/bin/env node
// `runnel` launcher: registers tsx (Runnel runs its TypeScript directly) and hands argv to src/cli.ts.
import { register } from 'tsx/esm/api';

register();
const { runCli } = await import('../src/cli.ts');
await runCli(process.argv.slice(2));
