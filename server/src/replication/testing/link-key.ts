/** One link key shared by the brokers of an in-process test cluster (real clusters derive theirs from etcd). */
export const TEST_LINK_KEY: Uint8Array = new Uint8Array(32).fill(0x5a);
