"""Applications: list, get, create, update, delete (decommission) and the day-2 actions.

Every call goes to the management cluster as the caller, so RBAC there decides; every
change is validated first exactly as ``milkyway validate`` does, and the edits are the
CLI's own (:mod:`milkyway.model.edits`, :mod:`milkyway.kube.applications`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Query, Request
from pydantic import BaseModel, Field

from milkyway.kube.applications import (
    component_types,
    edit_application,
    get_application,
    list_page,
    request_replace,
    request_restart,
)
from milkyway.kube.resources import APPLICATION
from milkyway.model.base import API_VERSION
from milkyway.model.edits import params_edit, scale_edit, upgrade_edit
from milkyway.model.errors import FieldError, ValidationFailed
from milkyway.model.load import application_from_data
from milkyway.model.resolve import resolve
from milkyway.security.change_stamp import REQUEST_ID
from milkyway.security.change_stamp import stamp as change_stamp
from milkyway.server.problems import Problem
from milkyway.server.state import Caller, kube_as, state_of

router = APIRouter(tags=["applications"])
FIELD_MANAGER = "milkyway-server"
REQUEST_ID_ANNOTATION = REQUEST_ID
"""The server's request id, on what it wrote and, through the operator, on the FlowRuns
that change causes (covered by :mod:`milkyway.security.change_stamp`'s proof)."""
NAME = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
Namespace = Annotated[str, Path(min_length=1, max_length=63, pattern=NAME)]
Name = Annotated[str, Path(min_length=1, max_length=63, pattern=NAME)]
Manifest = Annotated[dict[str, Any], Body(description="An Application manifest (YAML as JSON)")]

LIST_RESPONSES: dict[int | str, dict[str, Any]] = {401: {}, 403: {}}
ONE_RESPONSES: dict[int | str, dict[str, Any]] = {401: {}, 403: {}, 404: {}}


class ApplicationList(BaseModel):
    items: list[dict[str, Any]]
    continue_: str = Field("", alias="continue")
    resourceVersion: str = ""


class ActionResult(BaseModel):
    message: str
    requestId: str
    dryRun: bool = False
    """True: the change was checked (validation, RBAC, admission) and nothing written."""


DryRun = Annotated[
    bool,
    Query(
        description="check the change (validation, RBAC, the API server's admission) and "
        "answer what it would do, writing nothing"
    ),
]


def _request_id(request: Request) -> str:
    return str(getattr(request.state, "request_id", ""))


@router.get("/applications", response_model=ApplicationList, responses=LIST_RESPONSES)
async def list_applications(
    request: Request,
    identity: Caller,
    namespace: Annotated[str | None, Query(max_length=63, pattern=NAME)] = None,
    labelSelector: Annotated[str, Query(max_length=1024)] = "",
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    continue_: Annotated[str, Query(alias="continue", max_length=4096)] = "",
) -> dict[str, Any]:
    """One page of Applications (every namespace unless ``namespace``); pass ``continue``
    from a page to get the next."""
    limit = min(limit, state_of(request).page_limit_max)
    items, token, version = await list_page(
        kube_as(request, identity),
        APPLICATION,
        namespace=namespace,
        label_selector=labelSelector,
        limit=limit,
        continue_token=continue_,
    )
    for item in items:
        item.setdefault("apiVersion", API_VERSION)
        item.setdefault("kind", "Application")
    return {"items": items, "continue": token, "resourceVersion": version}


@router.get("/namespaces/{namespace}/applications/{name}", responses=ONE_RESPONSES)
async def read_application(
    namespace: Namespace, name: Name, request: Request, identity: Caller
) -> dict[str, Any]:
    return await get_application(kube_as(request, identity), name, namespace)


async def _validated(
    request: Request, identity: Any, document: dict[str, Any], namespace: str, name: str | None
) -> dict[str, Any]:
    """The manifest, checked like ``milkyway validate`` and placed in ``namespace``."""
    if document.get("apiVersion") != API_VERSION or document.get("kind") != "Application":
        raise ValidationFailed(
            [
                FieldError(
                    "kind",
                    document.get("kind"),
                    "not a Milkyway Application",
                    f"send apiVersion: {API_VERSION} and kind: Application",
                )
            ]
        )
    meta = document.setdefault("metadata", {})
    if not isinstance(meta, dict):
        raise ValidationFailed([FieldError("metadata", meta, "not a mapping", "send an object")])
    given_ns = meta.get("namespace")
    if given_ns not in (None, namespace):
        raise ValidationFailed(
            [
                FieldError(
                    "metadata.namespace",
                    given_ns,
                    f"differs from the namespace in the path ({namespace})",
                    "leave metadata.namespace out or make it match the path",
                )
            ]
        )
    if name is not None and meta.get("name") != name:
        raise ValidationFailed(
            [
                FieldError(
                    "metadata.name",
                    meta.get("name"),
                    f"differs from the name in the path ({name})",
                    "send the Application's own name",
                )
            ]
        )
    meta["namespace"] = namespace
    client = kube_as(request, identity)
    resolve(application_from_data(document), await component_types(client))
    annotations = meta.setdefault("annotations", {})
    if isinstance(annotations, dict):
        annotations[REQUEST_ID_ANNOTATION] = _request_id(request)
        key = await state_of(request).decision_key()
        annotations.update(
            change_stamp(
                key, identity.name, namespace, meta["name"], document.get("spec"), annotations
            )
        )
    return document


@router.post(
    "/namespaces/{namespace}/applications",
    status_code=201,
    responses={**ONE_RESPONSES, 409: {}, 422: {}},
)
async def create_application(
    namespace: Namespace, document: Manifest, request: Request, identity: Caller
) -> dict[str, Any]:
    """Create an Application; the operator provisions it across its clusters."""
    document = await _validated(request, identity, document, namespace, None)
    client = kube_as(request, identity)
    created = await client.create(APPLICATION(document), field_manager=FIELD_MANAGER)
    return dict(created.to_dict())


@router.put(
    "/namespaces/{namespace}/applications/{name}",
    responses={**ONE_RESPONSES, 409: {}, 422: {}},
)
async def update_application(
    namespace: Namespace, name: Name, document: Manifest, request: Request, identity: Caller
) -> dict[str, Any]:
    """Replace an Application's spec. ``metadata.resourceVersion`` must be the version
    read; when someone changed it since, the answer is 409 and nothing is written."""
    version = (
        (document.get("metadata") or {}).get("resourceVersion")
        if isinstance(document.get("metadata"), dict)
        else None
    )
    if not version:
        raise ValidationFailed(
            [
                FieldError(
                    "metadata.resourceVersion",
                    None,
                    "is required, so that a change made since you read it is not overwritten",
                    "send the resourceVersion of the Application you read (GET it first)",
                )
            ]
        )
    document = await _validated(request, identity, document, namespace, name)
    client = kube_as(request, identity)
    replaced = await client.replace(APPLICATION(document), field_manager=FIELD_MANAGER)
    return dict(replaced.to_dict())


@router.delete(
    "/namespaces/{namespace}/applications/{name}", status_code=202, responses=ONE_RESPONSES
)
async def delete_application(
    namespace: Namespace,
    name: Name,
    request: Request,
    identity: Caller,
    dryRun: DryRun = False,
) -> ActionResult:
    """Decommission: the operator removes the members in reverse dependency order, then
    the Application goes away."""
    client = kube_as(request, identity)
    live = await get_application(client, name, namespace)
    await client.delete(APPLICATION, name, namespace=namespace, dry_run=dryRun)
    if dryRun:
        components = [str(c.get("name")) for c in (live.get("spec") or {}).get("components", [])]
        message = (
            f"application/{namespace}/{name} would be decommissioned (dry run): the members "
            f"of {', '.join(components)} ({(live.get('status') or {}).get('readyMembers') or 0}"
            " ready) are removed from every cluster in reverse dependency order, volumes "
            "included, then the Application goes away"
        )
    else:
        message = f"application/{namespace}/{name} deletion requested"
    return ActionResult(message=message, requestId=_request_id(request), dryRun=dryRun)


class Scale(BaseModel):
    component: str = Field(min_length=1, max_length=63)
    zone: str = Field(min_length=1, max_length=63)
    size: int = Field(ge=0, le=1000)
    region: str | None = Field(default=None, max_length=63)


class Upgrade(BaseModel):
    component: str = Field(min_length=1, max_length=63)
    version: str = Field(min_length=1, max_length=128)
    zone: str | None = Field(default=None, max_length=63)


class SetParams(BaseModel):
    component: str = Field(min_length=1, max_length=63)
    params: dict[str, Any] = Field(description="values to set; null removes a key")
    zone: str | None = Field(default=None, max_length=63)


class Restart(BaseModel):
    component: str = Field(min_length=1, max_length=63)


class Replace(BaseModel):
    member: str = Field(min_length=1, max_length=253)


ACTION_RESPONSES: dict[int | str, dict[str, Any]] = {**ONE_RESPONSES, 409: {}, 422: {}}
_ACTION = "/namespaces/{namespace}/applications/{name}"


async def _stamper(
    request: Request, identity: Any, namespace: str, name: str
) -> Callable[[dict[str, Any]], dict[str, str]]:
    """The annotations to write with a change: this request's id and the stamp of who
    asked, computed over the document as it will be stored."""
    key = await state_of(request).decision_key()
    request_id = _request_id(request)

    def annotate(document: dict[str, Any]) -> dict[str, str]:
        annotations = {**(document["metadata"].get("annotations") or {})}
        annotations[REQUEST_ID_ANNOTATION] = request_id
        stamp = change_stamp(key, identity.name, namespace, name, document.get("spec"), annotations)
        return {REQUEST_ID_ANNOTATION: request_id, **stamp}

    return annotate


async def _edit(
    request: Request, identity: Any, name: str, namespace: str, edit: Any, dry_run: bool
) -> ActionResult:
    summary = await edit_application(
        kube_as(request, identity),
        name,
        namespace,
        edit,
        field_manager=FIELD_MANAGER,
        annotate=await _stamper(request, identity, namespace, name),
        dry_run=dry_run,
    )
    suffix = " (dry run: nothing changed)" if dry_run else ""
    return ActionResult(
        message=f"application/{namespace}/{name}: {summary}{suffix}",
        requestId=_request_id(request),
        dryRun=dry_run,
    )


@router.post(f"{_ACTION}/scale", responses=ACTION_RESPONSES)
async def scale(
    namespace: Namespace,
    name: Name,
    body: Scale,
    request: Request,
    identity: Caller,
    dryRun: DryRun = False,
) -> ActionResult:
    edit = scale_edit(body.component, body.zone, body.size, body.region)
    return await _edit(request, identity, name, namespace, edit, dryRun)


@router.post(f"{_ACTION}/upgrade", responses=ACTION_RESPONSES)
async def upgrade(
    namespace: Namespace,
    name: Name,
    body: Upgrade,
    request: Request,
    identity: Caller,
    dryRun: DryRun = False,
) -> ActionResult:
    edit = upgrade_edit(body.component, body.version, body.zone)
    return await _edit(request, identity, name, namespace, edit, dryRun)


@router.post(f"{_ACTION}/set-param", responses=ACTION_RESPONSES)
async def set_param(
    namespace: Namespace,
    name: Name,
    body: SetParams,
    request: Request,
    identity: Caller,
    dryRun: DryRun = False,
) -> ActionResult:
    if not body.params:
        raise Problem(422, "params is empty; send at least one KEY: VALUE (null removes it)")
    edit = params_edit(body.component, body.params, body.zone)
    return await _edit(request, identity, name, namespace, edit, dryRun)


def _stamp() -> str:
    """The next whole second (see ``milkyway restart``: members created before it act)."""
    after = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(seconds=1)
    return after.strftime("%Y-%m-%dT%H:%M:%SZ")


@router.post(f"{_ACTION}/restart", responses=ACTION_RESPONSES)
async def restart(
    namespace: Namespace,
    name: Name,
    body: Restart,
    request: Request,
    identity: Caller,
    dryRun: DryRun = False,
) -> ActionResult:
    message = await request_restart(
        kube_as(request, identity),
        name,
        namespace,
        body.component,
        _stamp(),
        field_manager=FIELD_MANAGER,
        annotate=await _stamper(request, identity, namespace, name),
        dry_run=dryRun,
    )
    return ActionResult(message=message, requestId=_request_id(request), dryRun=dryRun)


@router.post(f"{_ACTION}/replace", responses=ACTION_RESPONSES)
async def replace(
    namespace: Namespace,
    name: Name,
    body: Replace,
    request: Request,
    identity: Caller,
    dryRun: DryRun = False,
) -> ActionResult:
    message = await request_replace(
        kube_as(request, identity),
        name,
        namespace,
        body.member,
        _stamp(),
        field_manager=FIELD_MANAGER,
        annotate=await _stamper(request, identity, namespace, name),
        dry_run=dryRun,
    )
    return ActionResult(message=message, requestId=_request_id(request), dryRun=dryRun)
