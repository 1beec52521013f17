/** @runnel/client/group — server-side consumer groups for Node services (not in the browser bundle). */
export { createGroupConsumer, GroupConsumer } from './group-consumer.ts';
export type { GroupConsumerOptions, GroupConsumerEvents, RebalanceEvent, CommitEvent, TopicPartition } from './group-consumer.ts';
