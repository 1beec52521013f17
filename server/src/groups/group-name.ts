/**
 * Consumer group name rules: 1–maxGroupNameLength characters, none of them a
 * control character (U+0000–U+001F, U+007F). Checked once, by the
 * coordinator, on every operation that names a group from a client (join,
 * commit, fetch, describe), for WebSocket and HTTP alike.
 *
 * NB: control characters are refused because names end up in log lines,
 * Prometheus labels and HTTP paths, where a NUL or a newline splits or forges
 * what follows; a NUL in a name once left a closed member registered until
 * its session timeout (issue 11, finding 5).
 */
import { RunnelError } from '@runnel/client/codec';

const CONTROL_CHARACTER = /[\u0000-\u001f\u007f]/;

/** null when `name` is a legal group name, else why not. */
export function groupNameProblem(name: string, maxLength: number): string | null {
  if (name.length === 0) return 'group name is empty';
  if (name.length > maxLength) return `group name is ${name.length} characters, the limit is ${maxLength} (maxGroupNameLength)`;
  const at = name.search(CONTROL_CHARACTER);
  if (at >= 0) return `group name has a control character (U+${name.charCodeAt(at).toString(16).padStart(4, '0').toUpperCase()}) at index ${at}; use printable characters`;
  return null;
}

/** Throws INVALID_REQUEST unless `name` is a legal group name. */
export function assertGroupName(name: string, maxLength: number): void {
  const problem = groupNameProblem(name, maxLength);
  if (problem) throw new RunnelError('INVALID_REQUEST', problem);
}
