/**
 * Topic name rules (Kafka's): 1–249 characters of [a-zA-Z0-9._-], not "."
 * or "..". Checked once at the boundary (create, auto-create, subscribe).
 */
import { RunnelError } from '@runnel/client/codec';

const LEGAL = /^[a-zA-Z0-9._-]+$/;

/** Returns null when valid, else the reason. */
export function topicNameProblem(name: string, maxLength = 249): string | null {
  if (name.length === 0) return 'topic name is empty';
  if (name.length > maxLength) return `topic name is ${name.length} characters, the limit is ${maxLength}`;
  if (name === '.' || name === '..') return `topic name cannot be "${name}"`;
  if (!LEGAL.test(name)) return `topic name "${name.slice(0, 60)}" has characters outside [a-zA-Z0-9._-]`;
  return null;
}

export function assertTopicName(name: string, maxLength = 249): void {
  const problem = topicNameProblem(name, maxLength);
  if (problem) throw new RunnelError('INVALID_TOPIC_EXCEPTION', problem);
}
