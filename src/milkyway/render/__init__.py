"""Pure rendering of a resolved Application into Kubernetes manifests, per zone.

Exports load on first use (the agent needs only the render contract's constants).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from milkyway.render.zone import render_application, render_zone


def __getattr__(name: str) -> Any:
    if name not in ("render_application", "render_zone"):
        raise AttributeError(f"module 'milkyway.render' has no attribute {name!r}")
    return getattr(importlib.import_module("milkyway.render.zone"), name)


__all__ = ["render_application", "render_zone"]
