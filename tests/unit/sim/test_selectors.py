"""Label and field selector parsing and matching."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from milkyway.sim.apiserver.errors import ApiError
from milkyway.sim.apiserver.selectors import (
    parse_field_selector,
    parse_label_selector,
    selector_from_dict,
    selector_to_string,
)

LABELS = {"app": "web", "tier": "front", "env": "prod"}


@pytest.mark.parametrize(
    ("selector", "matches"),
    [
        ("", True),
        ("app=web", True),
        ("app==web", True),
        ("app!=web", False),
        ("app!=db", True),
        ("missing!=x", True),
        ("tier in (front, back)", True),
        ("tier in (back)", False),
        ("tier notin (back)", True),
        ("missing notin (a)", True),
        ("env", True),
        ("missing", False),
        ("!missing", True),
        ("!env", False),
        ("app=web,tier in (front),!canary", True),
        ("app=web,env=dev", False),
    ],
)
def test_label_selector_operators(selector: str, matches: bool) -> None:
    assert parse_label_selector(selector).matches(LABELS) is matches


@pytest.mark.parametrize("bad", ["app in web", "=web", "app in (a", "app = = b", "a b"])
def test_bad_label_selectors_are_400(bad: str) -> None:
    with pytest.raises(ApiError) as error:
        parse_label_selector(bad)
    assert error.value.code == 400 and bad in error.value.message


def test_label_selector_from_dict_round_trips_to_string() -> None:
    selector = {
        "matchLabels": {"app": "web"},
        "matchExpressions": [
            {"key": "tier", "operator": "In", "values": ["a", "b"]},
            {"key": "canary", "operator": "DoesNotExist"},
        ],
    }
    text = selector_to_string(selector)
    assert text == "app=web,tier in (a,b),!canary"
    assert parse_label_selector(text) == selector_from_dict(selector)


_KEYS = st.sampled_from(["a", "b", "c"])
_VALUES = st.sampled_from(["x", "y", "z"])


@given(
    st.dictionaries(_KEYS, _VALUES),
    st.dictionaries(_KEYS, _VALUES, min_size=1),
)
def test_equality_selector_matches_exactly_the_superset_labels(
    labels: dict[str, str], required: dict[str, str]
) -> None:
    selector = parse_label_selector(",".join(f"{k}={v}" for k, v in required.items()))
    assert selector.matches(labels) is all(labels.get(k) == v for k, v in required.items())


def test_field_selectors() -> None:
    pod = {
        "metadata": {"name": "p", "namespace": "ns"},
        "spec": {"nodeName": "n1", "hostNetwork": True},
        "status": {"phase": "Running"},
    }
    assert parse_field_selector("spec.nodeName=n1,status.phase!=Failed", "pods").matches(pod)
    assert parse_field_selector("spec.hostNetwork=true", "pods").matches(pod)
    assert not parse_field_selector("metadata.namespace==other", "pods").matches(pod)
    assert parse_field_selector("metadata.name=p", "pods").exact_name() == "p"
    with pytest.raises(ApiError) as unsupported:
        parse_field_selector("spec.nodeName=n1", "configmaps")
    assert (
        unsupported.value.code == 400 and "field label not supported" in unsupported.value.message
    )
    with pytest.raises(ApiError):
        parse_field_selector("spec.nodeName", "pods")
    with pytest.raises(ApiError):
        parse_field_selector("status.phase=Running", "widgets", custom=True)
