"""Which representation an Accept header gets."""

from __future__ import annotations

import pytest

from milkyway.sim.apiserver.errors import ApiError
from milkyway.sim.apiserver.negotiation import negotiate

META = "g=meta.k8s.io"


@pytest.mark.parametrize(
    ("accept", "collection", "watch", "as_", "version"),
    [
        ("", True, False, "", "v1"),
        ("application/json", False, False, "", "v1"),
        ("application/yaml", False, False, "", "v1"),
        ("application/vnd.kubernetes.protobuf, application/json", True, False, "", "v1"),
        (f"application/json;as=Table;v=v1;{META},application/json", True, False, "Table", "v1"),
        (
            f"application/vnd.kubernetes.protobuf;as=PartialObjectMetadataList;{META};v=v1,"
            f"application/json;as=PartialObjectMetadataList;{META};v=v1,application/json",
            True,
            False,
            "PartialObjectMetadataList",
            "v1",
        ),
        (
            f"application/json;as=PartialObjectMetadata;v=v1beta1;{META}",
            False,
            False,
            "PartialObjectMetadata",
            "v1beta1",
        ),
        (
            f"application/json;as=PartialObjectMetadata;v=v1;{META}",
            True,
            True,
            "PartialObjectMetadata",
            "v1",
        ),
        (f"application/json;as=Bogus;v=v1;{META},application/json", True, False, "", "v1"),
    ],
)
def test_first_acceptable_entry_wins(
    accept: str, collection: bool, watch: bool, as_: str, version: str
) -> None:
    rep = negotiate(accept, collection=collection, watch=watch)
    assert (rep.as_, rep.version) == (as_, version)


@pytest.mark.parametrize(
    "accept",
    [
        f"application/json;as=Bogus;v=v1;{META}",
        f"application/json;as=PartialObjectMetadataList;v=v1;{META}",
        f"application/json;as=Table;v=v9;{META}",
    ],
)
def test_nothing_acceptable_is_406(accept: str) -> None:
    with pytest.raises(ApiError) as refused:
        negotiate(accept, collection=False)
    assert refused.value.code == 406
    assert refused.value.reason == "NotAcceptable"
