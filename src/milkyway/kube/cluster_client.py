"""What Milkyway asks of a client of one cluster's API server.

The flow engine, its tasks and the flow store are handed clients by cluster name; they
call only these methods, with the parameters of lightkube's ``AsyncClient`` (whose methods
accept them at run time; its per-kind overloads leave ``namespace`` out of ``create``,
``replace`` and ``apply``, so the match is checked by a test, not by the type checker). A
test may pass any object with the same methods. Resource kinds, objects and selectors stay
``Any`` here: lightkube types them per kind, and a caller passes either its generated
classes or generic resources.
"""

from __future__ import annotations

from collections.abc import AsyncIterable
from typing import Any, Protocol


class ClusterClient(Protocol):
    """The calls of a Kubernetes API client Milkyway makes (lightkube's names)."""

    async def get(self, res: Any, name: str, *, namespace: str | None = None) -> Any: ...

    def list(
        self,
        res: Any,
        *,
        namespace: str | None = None,
        chunk_size: int | None = None,
        labels: Any = None,
        fields: Any = None,
    ) -> AsyncIterable[Any]: ...

    def watch(
        self,
        res: Any,
        *,
        namespace: str | None = None,
        labels: Any = None,
        fields: Any = None,
        server_timeout: int | None = None,
        resource_version: str | None = None,
    ) -> AsyncIterable[tuple[str, Any]]: ...

    async def create(
        self,
        obj: Any,
        name: str | None = None,
        *,
        namespace: str | None = None,
        field_manager: str | None = None,
    ) -> Any: ...

    async def replace(
        self,
        obj: Any,
        name: str | None = None,
        *,
        namespace: str | None = None,
        field_manager: str | None = None,
    ) -> Any: ...

    async def patch(
        self,
        res: Any,
        name: str,
        obj: Any,
        *,
        namespace: str | None = None,
        patch_type: Any = ...,
        field_manager: str | None = None,
        force: bool = False,
    ) -> Any: ...

    async def apply(
        self,
        obj: Any,
        name: str | None = None,
        *,
        namespace: str | None = None,
        field_manager: str | None = None,
        force: bool = False,
    ) -> Any: ...

    async def delete(
        self,
        res: Any,
        name: str,
        *,
        namespace: str | None = None,
        grace_period: int | None = None,
        cascade: Any = None,
    ) -> None: ...
