// vitest config of the conformance child process only (conformance.test.ts); npm test itself is node --test.
export default { test: { include: ['conformance-suite.vitest.mjs'], fileParallelism: false } };
