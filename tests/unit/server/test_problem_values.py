"""Values in problem details never break the response nor flood it."""

from __future__ import annotations

import json
import math

from milkyway.model.errors import FieldError
from milkyway.server.problems import field_errors


def test_any_value_becomes_json() -> None:
    values = [
        math.inf,
        -math.inf,
        math.nan,
        {"": math.inf},
        [math.nan],
        b"\\xff",
        object(),
        "x" * 10_000,
        list(range(10_000)),
        {"ok": [1, 2.5, "a"]},
        None,
        3,
        "short",
    ]
    rendered = field_errors([FieldError("spec.x", v, "bad", "fix it") for v in values])
    text = json.dumps(rendered, allow_nan=False)
    assert len(text) < 20_000
    assert rendered[-1]["value"] == "short" and rendered[-4]["value"] == {"ok": [1, 2.5, "a"]}
    assert rendered[0]["value"] == "inf"


def test_a_document_nested_past_the_limit_is_a_field_error() -> None:
    import pytest

    from milkyway.model.errors import ValidationFailed
    from milkyway.model.load import application_from_data

    nested: list = []
    for _ in range(5_000):
        nested = [nested]
    with pytest.raises(ValidationFailed, match="more than 100 levels"):
        application_from_data({"apiVersion": "milkyway.ebay.com/v1", "spec": nested})
