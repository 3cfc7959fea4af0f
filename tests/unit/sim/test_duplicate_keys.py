"""Duplicate JSON keys are found with their paths, and only when they are there."""

from __future__ import annotations

import json

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from milkyway.sim.apiserver.duplicate_keys import duplicate_fields


def found(raw: str) -> list[str]:
    data = raw.encode()
    return duplicate_fields(data, orjson.loads(data))


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ('{"a": 1, "a": 2}', ["a"]),
        ('{"a" : 1 , "b": {"c": 1, "c": 2, "c": 3}}', ["b.c"]),
        ('{"s": {"l": [{"n": 1}, {"n": 1, "n": 2}]}}', ["s.l[1].n"]),
        ('{"a": 1, "b": 2}', []),
        ('{"a": "x\\":", "b": "\\":\\":"}', []),
        ('{"a": "x\\":", "a": 2}', ["a"]),
        ('{"a": "\\u0022:", "b": 1, "b": 2}', ["b"]),
        ('{"a":{"b":[1,{"c":2,"c":3}]},"d":"\\":\\":"}', ["a.b[1].c"]),
        ("[]", []),
    ],
)
def test_duplicates_are_named_by_path(raw: str, expected: list[str]) -> None:
    assert found(raw) == expected


json_objects = st.recursive(
    st.none() | st.integers() | st.text(alphabet='ab":\\ ', max_size=6),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.text(alphabet='ab":', max_size=3), inner, max_size=3)
    ),
    max_leaves=12,
)


@given(json_objects)
def test_serialized_values_never_have_duplicates(value: object) -> None:
    assert found(json.dumps(value)) == []


@given(json_objects, st.booleans())
def test_a_repeated_top_level_key_is_always_found(value: object, compact: bool) -> None:
    separators = (",", ":") if compact else (", ", " : ")
    body = json.dumps({"k": value}, separators=separators)
    assert found('{"k":0,' + body[1:]) == ["k"]
