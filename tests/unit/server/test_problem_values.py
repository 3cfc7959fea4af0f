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
