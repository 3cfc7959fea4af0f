"""The largest Application spec the operator processes.

Validating, resolving and rendering cost time and memory in proportion to the spec, and
every reconcile repeats them; an Application's spec is a few kilobytes even for a large
deployment. A spec past :data:`MAX_SPEC_BYTES` (as JSON) is refused with the same
``InvalidSpec`` condition and Event as any other invalid spec, before any of that work,
so one oversized object can neither exhaust the operator nor stall the others.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from milkyway.model.errors import FieldError

MAX_SPEC_BYTES = 512 * 1024


def oversized_spec(obj: Mapping[str, Any]) -> FieldError | None:
    """The error for an Application whose spec is larger than :data:`MAX_SPEC_BYTES`."""
    try:
        size = len(orjson.dumps(obj.get("spec")))
    except (TypeError, orjson.JSONEncodeError):
        size = MAX_SPEC_BYTES + 1
    if size <= MAX_SPEC_BYTES:
        return None
    return FieldError(
        "spec",
        None,
        f"the spec is {size} bytes of JSON; the operator processes specs of at most "
        f"{MAX_SPEC_BYTES} bytes",
        "move bulky values (config files, data) out of params into ConfigMaps or images",
    )
