// `node --import ./module-log.mjs ...`: appends the URL of every module the
// process loads through the ES module loader (every `import`, and what they
// import) to the file named by $RUNNEL_MODULE_LOG, one per line, so a test can
// tell which files ran: compiled JavaScript or TypeScript sources.
import { register } from 'node:module';

register(new URL('./module-log-hooks.mjs', import.meta.url));
