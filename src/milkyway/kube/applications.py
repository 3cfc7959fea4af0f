"""Reading and changing Applications on the management cluster, for every front end.

The CLI's day-2 verbs and the REST server both go through these functions with a lightkube
client (the server's acts as the signed-in user), so an edit is validated and written the
same way whoever asks: the spec edit (:mod:`milkyway.model.edits`) is applied to what was
read, the result validated against the built-in and stored ComponentTypes, and written
with the read resourceVersion as precondition.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from lightkube import ApiError, AsyncClient
from lightkube.core import resource as res
from lightkube.types import PatchType

from milkyway.components import ComponentTypeRegistry, builtin_component_types
from milkyway.components.registry import registry_from_resources
from milkyway.kube.resources import APPLICATION, COMPONENT_TYPE
from milkyway.model.edits import (
    REPLACE_ANNOTATION,
    RESTART_ANNOTATION,
    SpecEdit,
    check_member,
    clean_document,
    find_component,
    with_request,
)
from milkyway.model.load import application_from_data
from milkyway.model.resolve import resolve

DEFAULT_FIELD_MANAGER = "milkyway-cli"


class ApplicationNotFound(LookupError):
    """The named Application does not exist (or the caller may not see it)."""


class KeepsChanging(RuntimeError):
    """Every attempt to write an edit met a newer version written by someone else."""


async def component_types(
    client: AsyncClient, on_forbidden: Callable[[], None] | None = None
) -> ComponentTypeRegistry:
    """Built-in types overridden by the ComponentTypes stored in the cluster (none when the
    CRD is not installed yet; the built-in ones for a caller whose rights end at a
    namespace, since ComponentTypes are cluster-scoped — ``on_forbidden`` is told)."""
    try:
        items = [item.to_dict() async for item in client.list(COMPONENT_TYPE)]
    except ApiError as exc:
        if exc.status.code == 404:
            return builtin_component_types()
        if exc.status.code == 403:
            if on_forbidden is not None:
                on_forbidden()
            return builtin_component_types()
        raise
    return registry_from_resources(items)


async def get_or_none(
    client: AsyncClient, resource: Any, name: str, namespace: str | None = None
) -> Any:
    """The object, or None when the API server answers 404."""
    try:
        if namespace is None:
            return await client.get(resource, name)
        return await client.get(resource, name, namespace=namespace)
    except ApiError as exc:
        if exc.status.code == 404:
            return None
        raise


async def get_application(client: AsyncClient, name: str, namespace: str) -> dict[str, Any]:
    item = await get_or_none(client, APPLICATION, name, namespace)
    if item is None:
        raise ApplicationNotFound(
            f"Application {namespace}/{name} not found; list them with "
            f"`milkyway get -n {namespace}` (or -A for every namespace)"
        )
    return dict(item.to_dict())


async def edit_application(
    client: AsyncClient,
    name: str,
    namespace: str,
    edit: SpecEdit,
    *,
    annotations: Mapping[str, str | None] | None = None,
    attempts: int = 5,
    field_manager: str = DEFAULT_FIELD_MANAGER,
    annotate: Callable[[dict[str, Any]], Mapping[str, str]] | None = None,
    dry_run: bool = False,
) -> str:
    """Change an Application's spec with ``edit``, validate the result locally, and write it
    with the read resourceVersion as precondition (re-read and re-edit on a conflict).

    ``annotate``: more annotations computed from the edited document (the server's stamp
    of who changed it). ``dry_run``: the API server checks the write (admission, RBAC)
    and persists nothing."""
    for _ in range(attempts):
        live = await get_application(client, name, namespace)
        document = clean_document(live)
        summary = edit(document["spec"])
        app_model = application_from_data(document)
        resolve(app_model, await component_types(client))
        patch: dict[str, Any] = {
            "metadata": {"resourceVersion": live["metadata"]["resourceVersion"]},
            "spec": document["spec"],
        }
        if annotations:
            patch["metadata"]["annotations"] = dict(annotations)
        if annotate is not None and document["spec"] != live.get("spec"):
            patch["metadata"].setdefault("annotations", {}).update(annotate(document))
        if document["spec"] == live.get("spec") and not annotations:
            return f"{summary} (unchanged)"
        try:
            await client.patch(
                APPLICATION,
                name,
                patch,
                namespace=namespace,
                patch_type=PatchType.MERGE,
                field_manager=field_manager,
                dry_run=dry_run,
            )
        except ApiError as exc:
            if exc.status.code == 409:
                continue
            raise
        return summary
    raise KeepsChanging(
        f"Application {namespace}/{name} kept changing under us; try again in a moment"
    )


async def record_request(
    client: AsyncClient,
    live: dict[str, Any],
    annotation: str,
    subject: str,
    stamp: str,
    *,
    field_manager: str = DEFAULT_FIELD_MANAGER,
    annotate: Callable[[dict[str, Any]], Mapping[str, str]] | None = None,
    dry_run: bool = False,
) -> None:
    """Set ``subject@stamp`` in the Application's request ``annotation``, guarded by the
    resourceVersion that was read (``dry_run``: checked by the API server, not persisted).
    ``annotate``: more annotations computed from the document as it will be (the server's
    stamp of who asked)."""
    metadata = live["metadata"]
    current = (metadata.get("annotations") or {}).get(annotation, "")
    annotations = {annotation: with_request(current, subject, stamp)}
    if annotate is not None:
        document = dict(live)
        document["metadata"] = {
            **metadata,
            "annotations": {**(metadata.get("annotations") or {}), **annotations},
        }
        annotations.update(annotate(document))
    await client.patch(
        APPLICATION,
        metadata["name"],
        {
            "metadata": {
                "annotations": annotations,
                "resourceVersion": metadata["resourceVersion"],
            }
        },
        namespace=metadata["namespace"],
        patch_type=PatchType.MERGE,
        field_manager=field_manager,
        dry_run=dry_run,
    )


async def request_restart(
    client: AsyncClient,
    name: str,
    namespace: str,
    component: str,
    stamp: str,
    *,
    field_manager: str = DEFAULT_FIELD_MANAGER,
    annotate: Callable[[dict[str, Any]], Mapping[str, str]] | None = None,
    dry_run: bool = False,
) -> str:
    """Ask for a rolling restart: ``component@stamp`` goes into the Application's restart
    annotation (the same ``name@time`` form as replace requests): members of the component
    created before ``stamp`` are to be restarted."""
    live = await get_application(client, name, namespace)
    find_component(live.get("spec", {}), component)
    await record_request(
        client,
        live,
        RESTART_ANNOTATION,
        component,
        stamp,
        field_manager=field_manager,
        annotate=annotate,
        dry_run=dry_run,
    )
    asked = "would be requested (dry run)" if dry_run else "requested"
    return f"application/{namespace}/{name}: restart of {component} {asked} ({stamp})"


async def request_replace(
    client: AsyncClient,
    name: str,
    namespace: str,
    member: str,
    stamp: str,
    *,
    field_manager: str = DEFAULT_FIELD_MANAGER,
    annotate: Callable[[dict[str, Any]], Mapping[str, str]] | None = None,
    dry_run: bool = False,
) -> str:
    """Ask the operator to replace one member: ``member@stamp`` goes into the Application's
    replace annotation; the planner replaces a member created before its request time."""
    live = await get_application(client, name, namespace)
    check_member(live, member)
    await record_request(
        client,
        live,
        REPLACE_ANNOTATION,
        member,
        stamp,
        field_manager=field_manager,
        annotate=annotate,
        dry_run=dry_run,
    )
    asked = "would be requested (dry run)" if dry_run else "requested"
    return f"application/{namespace}/{name}: replacement of {member} {asked}"


async def list_page(
    client: AsyncClient,
    resource: Any,
    *,
    namespace: str | None,
    label_selector: str = "",
    limit: int = 100,
    continue_token: str = "",
) -> tuple[list[dict[str, Any]], str, str]:
    """One page of a list, as the API server pages it: (items, continue token, resource
    version). ``namespace=None`` lists every namespace."""
    generic = client._client
    params: dict[str, Any] = {"limit": limit}
    if label_selector:
        params["labelSelector"] = label_selector
    if continue_token:
        params["continue"] = continue_token
    if issubclass(resource, res.NamespacedResource) and namespace is None:
        namespace = "*"
    request = generic.prepare_request("list", resource, namespace=namespace, params=params)
    response = await generic.send(generic.build_adapter_request(request))
    generic.raise_for_status(response)
    body = response.json()
    meta = body.get("metadata") or {}
    return (
        list(body.get("items") or []),
        meta.get("continue") or "",
        meta.get("resourceVersion", ""),
    )
