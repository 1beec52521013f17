/**
 * Which connection (`GroupMemberSink`) holds which group membership, and the
 * generation each member was last sent an assignment of.
 *
 * Keys are structured (group → memberId → binding, and sink → its bindings),
 * never joined strings: splitting `${group}\0${memberId}` back apart broke on
 * a NUL in the group name and left a closed member registered until its
 * session timeout (issue 11, finding 5).
 * Invariant: a binding is in `byGroup` exactly when it is in its sink's set,
 * so `leaveAll(sink)` finds every membership of a closing connection.
 */
import type { GroupAssignmentFrame } from '@runnel/client/codec';

/** Where a member's assignment frames go (the WebSocket session). */
export interface GroupMemberSink {
  sendAssignment(frame: GroupAssignmentFrame): void;
}

export interface MemberBinding {
  readonly groupId: string;
  readonly memberId: string;
  readonly sink: GroupMemberSink;
  /** Generation of the last assignment this member was sent (join answer or push); −1 = none yet. */
  sentGenerationId: number;
}

export class MemberBindings {
  private readonly byGroup = new Map<string, Map<string, MemberBinding>>();
  private readonly bySink = new Map<GroupMemberSink, Set<MemberBinding>>();

  get(groupId: string, memberId: string): MemberBinding | undefined {
    return this.byGroup.get(groupId)?.get(memberId);
  }

  /** Memberships `sink` holds (bounded by maxGroupMembershipsPerConnection). */
  countOf(sink: GroupMemberSink): number {
    return this.bySink.get(sink)?.size ?? 0;
  }

  /** A snapshot of the memberships `sink` holds. */
  of(sink: GroupMemberSink): MemberBinding[] {
    return [...(this.bySink.get(sink) ?? [])];
  }

  /** Binds the member to `sink`; a rejoin from another connection moves the binding there. */
  bind(groupId: string, memberId: string, sink: GroupMemberSink): MemberBinding {
    const held = this.get(groupId, memberId);
    if (held?.sink === sink) return held;
    if (held) this.unbind(groupId, memberId);
    const binding: MemberBinding = { groupId, memberId, sink, sentGenerationId: -1 };
    let members = this.byGroup.get(groupId);
    if (!members) this.byGroup.set(groupId, (members = new Map()));
    members.set(memberId, binding);
    let own = this.bySink.get(sink);
    if (!own) this.bySink.set(sink, (own = new Set()));
    own.add(binding);
    return binding;
  }

  unbind(groupId: string, memberId: string): MemberBinding | undefined {
    const members = this.byGroup.get(groupId);
    const binding = members?.get(memberId);
    if (!members || !binding) return undefined;
    members.delete(memberId);
    if (members.size === 0) this.byGroup.delete(groupId);
    const own = this.bySink.get(binding.sink);
    own?.delete(binding);
    if (own?.size === 0) this.bySink.delete(binding.sink);
    return binding;
  }
}
