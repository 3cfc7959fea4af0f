"""Stable member identities (ZooKeeper ``myid``, Kafka ``broker.id``) across zones.

An identity belongs to a member's volume, so it must never move to another member and
never be handed to two members. The assignment is stored in the Application status and
read back on every render:

* member ``i`` of a zone (its ordinal) keeps ``ids[i]`` for as long as it exists;
* growing a zone first takes back the identities this zone released when it shrank (its
  retained volumes still carry them), in ordinal order, then fresh ones from ``nextId``;
* shrinking releases the highest ordinals (what a StatefulSet removes) into ``retired``;
* a zone removed from the spec keeps all its identities as ``retired``;
* ``nextId`` only grows, so no identity is ever handed to two zones.
"""

from __future__ import annotations

from collections.abc import Sequence

from milkyway.model.application import MemberAssignment, ZoneMembers


def assign_identities(
    previous: MemberAssignment | None, zones: Sequence[tuple[str, int]], first_id: int = 1
) -> MemberAssignment:
    """The assignment for ``zones`` (name, size) that keeps every identity of ``previous``."""
    previous = previous or MemberAssignment(next_id=first_id)
    used: set[int] = set()
    kept: dict[str, ZoneMembers] = {}
    for name in sorted(previous.zones):
        members = previous.zones[name]
        ids = [i for i in members.ids if i not in used]
        used.update(ids)
        retired = [i for i in members.retired if i not in used]
        used.update(retired)
        kept[name] = ZoneMembers(ids=ids, retired=retired)
    next_id = max([previous.next_id, first_id, *(i + 1 for i in used)])
    result: dict[str, ZoneMembers] = {}
    wanted = dict(zones)
    for name, size in zones:
        members = kept.get(name, ZoneMembers())
        ids = list(members.ids)
        retired = list(members.retired)
        if size < len(ids):
            retired = ids[size:] + retired
            ids = ids[:size]
        while len(ids) < size:
            if retired:
                ids.append(retired.pop(0))
            else:
                ids.append(next_id)
                next_id += 1
        result[name] = ZoneMembers(ids=ids, retired=retired)
    for name, members in kept.items():
        if name not in wanted:
            result[name] = ZoneMembers(ids=[], retired=members.ids + members.retired)
    ordered = {name: result[name] for name in sorted(result)}
    return MemberAssignment(next_id=next_id, zones=ordered)
