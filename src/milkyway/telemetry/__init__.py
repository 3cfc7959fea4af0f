"""Prometheus metrics and structured logs shared by every Milkyway process.

One registry per process (:data:`REGISTRY`): the operator, the server and the flow
engine register their metrics in it and ``/metrics`` serves it. This package imports
nothing else of Milkyway, so every layer may use it.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry

REGISTRY = CollectorRegistry(auto_describe=True)

__all__ = ["REGISTRY"]
