// The module.register() hooks of module-log.mjs (they run on node's loader thread).
import { appendFileSync } from 'node:fs';

export async function load(url, context, nextLoad) {
  appendFileSync(process.env.RUNNEL_MODULE_LOG, `${url}\n`);
  return nextLoad(url, context);
}
