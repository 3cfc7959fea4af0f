"""lightkube's AsyncClient is a ClusterClient: every method the protocol names exists
with the protocol's parameters (name, kind and default), so the engine and the flow
store may be handed a real client wherever their annotations say ClusterClient."""

from __future__ import annotations

import inspect
from typing import Any

import pytest
from lightkube import AsyncClient

from milkyway.kube.cluster_client import ClusterClient

METHODS = ["get", "list", "watch", "create", "replace", "patch", "apply", "delete"]


def accepts(implementation: Any, wanted: Any) -> list[str]:
    """What of ``wanted``'s parameters ``implementation`` does not accept as they are."""
    have = inspect.signature(implementation).parameters
    problems = []
    for name, param in inspect.signature(wanted).parameters.items():
        other = have.get(name)
        if other is None:
            problems.append(f"no parameter {name!r}")
            continue
        positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
        if param.kind in positional and other.kind not in positional:
            problems.append(f"{name!r} is not positional")
        if param.default is inspect.Parameter.empty:
            continue
        if other.default is inspect.Parameter.empty:
            problems.append(f"{name!r} is required")
    return problems


def test_the_protocol_names_every_method_the_engine_calls() -> None:
    declared = {n for n in vars(ClusterClient) if not n.startswith("_")}
    assert declared == set(METHODS)


@pytest.mark.parametrize("method", METHODS)
def test_lightkube_async_client_has_the_method_with_its_parameters(method: str) -> None:
    implementation = getattr(AsyncClient, method)
    wanted = getattr(ClusterClient, method)
    assert inspect.iscoroutinefunction(implementation) == inspect.iscoroutinefunction(wanted)
    assert accepts(implementation, wanted) == []


def test_a_missing_parameter_is_reported() -> None:
    """The check above can fail: a client whose ``get`` takes no namespace is refused."""

    class Narrow:
        async def get(self, res: Any, name: str) -> Any:
            return None

    assert accepts(Narrow.get, ClusterClient.get) == ["no parameter 'namespace'"]
