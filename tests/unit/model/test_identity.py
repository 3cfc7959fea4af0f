"""Member identities: unique across zones, unchanged for unchanged members, bound to zones."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from milkyway.model.application import MemberAssignment
from milkyway.model.identity import assign_identities


def test_first_assignment_numbers_zones_in_order() -> None:
    result = assign_identities(None, [("phx", 3), ("slc", 2)])
    assert result.zones["phx"].ids == [1, 2, 3]
    assert result.zones["slc"].ids == [4, 5]
    assert result.next_id == 6


def test_adding_a_zone_keeps_existing_identities() -> None:
    first = assign_identities(None, [("phx", 3)])
    second = assign_identities(first, [("ams", 2), ("phx", 3)])
    assert second.zones["phx"].ids == [1, 2, 3]
    assert second.zones["ams"].ids == [4, 5]


def test_shrink_then_grow_gives_the_zone_its_own_identities_back() -> None:
    state = assign_identities(None, [("phx", 3), ("slc", 3)])
    state = assign_identities(state, [("phx", 1), ("slc", 3)])
    assert state.zones["phx"].ids == [1]
    assert state.zones["phx"].retired == [2, 3]
    state = assign_identities(state, [("phx", 1), ("slc", 4)])
    assert state.zones["slc"].ids == [4, 5, 6, 7]
    state = assign_identities(state, [("phx", 4), ("slc", 4)])
    assert state.zones["phx"].ids == [1, 2, 3, 8]


def test_removed_zone_keeps_its_identities_retired() -> None:
    state = assign_identities(None, [("phx", 3), ("slc", 2)])
    state = assign_identities(state, [("phx", 3)])
    assert state.zones["slc"].ids == []
    assert state.zones["slc"].retired == [4, 5]
    state = assign_identities(state, [("phx", 3), ("lvs", 2)])
    assert state.zones["lvs"].ids == [6, 7]
    state = assign_identities(state, [("phx", 3), ("lvs", 2), ("slc", 1)])
    assert state.zones["slc"].ids == [4]


def test_first_id_is_respected() -> None:
    assert assign_identities(None, [("phx", 2)], first_id=0).zones["phx"].ids == [0, 1]


def test_corrupted_status_never_yields_duplicates() -> None:
    broken = MemberAssignment.model_validate(
        {"nextId": 2, "zones": {"a": {"ids": [1, 2]}, "b": {"ids": [2, 3]}}}
    )
    result = assign_identities(broken, [("a", 2), ("b", 2)])
    ids = result.zones["a"].ids + result.zones["b"].ids
    assert len(ids) == len(set(ids)) == 4
    assert result.zones["a"].ids == [1, 2]


ZONES = ["phx", "slc", "lvs", "ams", "sin"]
layouts = st.lists(
    st.dictionaries(st.sampled_from(ZONES), st.integers(min_value=0, max_value=6), max_size=5),
    min_size=1,
    max_size=8,
)


@settings(max_examples=200, deadline=None)
@given(layouts)
def test_identities_never_collide_and_never_move(steps: list[dict[str, int]]) -> None:
    state: MemberAssignment | None = None
    for layout in steps:
        new = assign_identities(state, sorted(layout.items()))
        everything = [i for z in new.zones.values() for i in z.ids + z.retired]
        assert len(everything) == len(set(everything)), "an identity was handed out twice"
        assert all(i < new.next_id for i in everything)
        for zone, size in layout.items():
            assert len(new.zones[zone].ids) == size
            if state is not None and zone in state.zones:
                old = state.zones[zone].ids
                kept = min(len(old), size)
                assert new.zones[zone].ids[:kept] == old[:kept], "a member's identity changed"
        if state is not None:
            assert new.next_id >= state.next_id
            for zone, members in state.zones.items():
                mine = set(members.ids + members.retired)
                assert mine <= set(new.zones[zone].ids + new.zones[zone].retired)
        state = new
