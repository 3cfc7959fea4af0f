"""The steps of a generated Secret's rotation (flow ``milkyway-rotate-secret``).

``write`` makes the new value in the source of truth (the Secret in the component's
first zone) exactly once per run: the write is keyed on the run's name and conditional on
the resourceVersion read, so an attempt run again after the operator was killed finds
its own value instead of making another. ``copy`` makes every zone's Secret a copy of the
source; ``wait-applied`` waits until every member's agent reports that copy's version
applied (the agent runs the secret's ``reloadAction`` when the kubelet publishes the new
files); ``retire`` drops the replaced value from the source, after which ``copy`` and
``wait-applied`` run once more. No step result holds a secret value.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from lightkube.core.exceptions import ApiError
from lightkube.resources.core_v1 import Secret
from pydantic import Field

from milkyway.flows.tasks import FatalError, RetryableError, TaskContext, task
from milkyway.kube.agent_client import AgentClient, AgentError
from milkyway.kube.agent_contract import AGENT_CONFIG_FILE
from milkyway.kube.generated_secrets import (
    ROTATION_ANNOTATION,
    SECRET_LABEL,
    SECRET_SOURCE,
    VERSION_ANNOTATION,
    StaleWrite,
    annotations_of,
    copy_secret,
    ensure_source,
    generated_secret_name,
    new_value,
    read_secret,
    retire_previous,
    secret_labels,
    secret_version,
    write_rotation,
)
from milkyway.kube.labels import APPLICATION, COMPONENT
from milkyway.model.agent_spec import AgentSpec
from milkyway.operator.tasks.common import (
    POLL_INTERVAL,
    Clock,
    Params,
    call,
    delete,
    list_objects,
    list_pods,
    still_waiting,
)


class Place(Params):
    cluster: str
    namespace: str


class SecretParams(Params):
    secret: str
    """Name of the Kubernetes Secret."""
    source: Place
    """Where the source of truth lives (the component's first zone)."""


class WriteParams(SecretParams):
    key: str = "password"
    length: int = Field(default=32, ge=16, le=1024)
    alphabet: str = "alphanumeric"


class CopyParams(SecretParams):
    cluster: str
    namespace: str


class WaitAppliedParams(CopyParams):
    declared: str
    """The agent's name of the secret (``agent.secrets[].name``)."""
    selector: dict[str, str]
    timeout: float = Field(default=600.0, gt=0)
    interval: float = Field(default=POLL_INTERVAL * 4, gt=0)


def _summary(obj: dict[str, Any]) -> dict[str, Any]:
    annotations = annotations_of(obj)
    return {
        "rotation": annotations.get(ROTATION_ANNOTATION),
        "secretVersion": annotations.get(VERSION_ANNOTATION),
        "version": secret_version(obj),
    }


async def _source(ctx: TaskContext, params: SecretParams) -> dict[str, Any]:
    client = ctx.client(params.source.cluster)
    found = await call(
        ctx,
        params.source.cluster,
        f"read Secret {params.secret}",
        lambda: read_secret(client, params.source.namespace, params.secret),
    )
    if found is None:
        raise FatalError(
            f"Secret {params.source.namespace}/{params.secret} does not exist in "
            f"{params.source.cluster}; it is created when the zone is applied"
        )
    return found


@task("milkyway.secret-write")
async def secret_write(params: WriteParams, ctx: TaskContext) -> dict[str, Any]:
    """A new value in the source of truth, made once for this run."""
    client = ctx.client(params.source.cluster)
    value = new_value(params.length, params.alphabet)

    async def write() -> dict[str, Any]:
        return await write_rotation(
            client, params.source.namespace, params.secret, params.key, value, ctx.run_id
        )

    try:
        written = await call(ctx, params.source.cluster, f"rotate Secret {params.secret}", write)
    except StaleWrite as error:
        raise RetryableError(str(error)) from None
    except LookupError as error:
        raise FatalError(str(error)) from None
    return _summary(written)


@task("milkyway.secret-retire")
async def secret_retire(params: WriteParams, ctx: TaskContext) -> dict[str, Any]:
    """The replaced value dropped from the source of truth."""
    client = ctx.client(params.source.cluster)

    async def retire() -> dict[str, Any]:
        return await retire_previous(
            client, params.source.namespace, params.secret, params.key, ctx.run_id
        )

    try:
        retired = await call(ctx, params.source.cluster, f"retire Secret {params.secret}", retire)
    except StaleWrite as error:
        raise RetryableError(str(error)) from None
    except LookupError as error:
        raise FatalError(str(error)) from None
    return _summary(retired)


@task("milkyway.secret-copy")
async def secret_copy(params: CopyParams, ctx: TaskContext) -> dict[str, Any]:
    """The zone's Secret made a copy of the source of truth."""
    source = await _source(ctx, params)
    if (params.cluster, params.namespace) == (params.source.cluster, params.source.namespace):
        return _summary(source)
    client = ctx.client(params.cluster)
    try:
        copied = await call(
            ctx,
            params.cluster,
            f"copy Secret {params.secret}",
            lambda: copy_secret(client, params.namespace, source),
        )
    except StaleWrite as error:
        raise RetryableError(str(error)) from None
    return _summary(copied)


@task("milkyway.secret-wait-applied")
async def secret_wait_applied(params: WaitAppliedParams, ctx: TaskContext) -> dict[str, Any]:
    """Every member of the zone reports the source's current version applied."""
    source = await _source(ctx, params)
    want = secret_version(source)
    client = ctx.client(params.cluster)
    clock = Clock(params.timeout)
    while True:
        pods = await list_pods(ctx, params.cluster, params.namespace, params.selector, clock)
        behind: dict[str, str] = {}
        for pod in pods:
            name = pod["metadata"]["name"]
            agent = AgentClient(client, params.namespace, name)
            try:
                status = await agent.status()
            except AgentError as error:
                behind[name] = f"agent unreachable: {error}"
                continue
            seen = (status.get("secrets") or {}).get(params.declared) or {}
            if seen.get("applied") != want:
                detail = seen.get("lastError") or f"applied {seen.get('applied')}"
                behind[name] = detail
        if not behind:
            return {"version": want, "members": sorted(p["metadata"]["name"] for p in pods)}
        shown = "; ".join(f"{pod}: {why}" for pod, why in sorted(behind.items()))
        still_waiting(
            ctx,
            clock,
            f"waiting for {len(behind)} member(s) to apply {params.secret} {want} ({shown})",
            f"members did not apply {params.secret} {want} in time ({shown})",
        )
        await asyncio.sleep(params.interval)


async def ensure_generated_secrets(
    ctx: TaskContext, cluster: str, namespace: str, manifests: Sequence[dict[str, Any]]
) -> list[str]:
    """Before a zone's pods start: every Secret its type generates exists in the source
    zone (created with a fresh value if missing) and, if missing here, as a copy in this
    zone. An existing copy is left alone: only a rotation changes a value."""
    created: list[str] = []
    for manifest in manifests:
        metadata = manifest.get("metadata") or {}
        source_cluster = (metadata.get("annotations") or {}).get(SECRET_SOURCE)
        declaration = (manifest.get("data") or {}).get(AGENT_CONFIG_FILE)
        if manifest.get("kind") != "ConfigMap" or not source_cluster or not declaration:
            continue
        labels = metadata.get("labels") or {}
        application, component = labels.get(APPLICATION, ""), labels.get(COMPONENT, "")
        for declared in AgentSpec.model_validate(json.loads(declaration)).secrets:
            if declared.generate is None:
                continue
            name = generated_secret_name(application, component, declared.name)
            wanted = _Wanted(
                name,
                declared.generate.key,
                new_value(declared.generate.length, declared.generate.alphabet),
                secret_labels(application, component, declared.name),
            )
            if await _ensure_one(ctx, source_cluster, cluster, namespace, wanted):
                created.append(name)
    return created


@dataclass(frozen=True)
class _Wanted:
    name: str
    key: str
    value: str
    labels: dict[str, str]


async def _ensure_one(
    ctx: TaskContext, source_cluster: str, cluster: str, namespace: str, wanted: _Wanted
) -> bool:
    source_client = ctx.client(source_cluster)

    async def make() -> dict[str, Any]:
        return await ensure_source(
            source_client, namespace, wanted.name, wanted.key, wanted.value, wanted.labels
        )

    try:
        source = await call(ctx, source_cluster, f"create Secret {wanted.name}", make)
    except ApiError as error:
        if error.status.code != 404:
            raise
        raise RetryableError(
            f"Secret {namespace}/{wanted.name} cannot be created in {source_cluster} yet "
            f"(the first zone's namespace is not there: {error.status.message})"
        ) from None
    if source_cluster == cluster:
        return True
    client = ctx.client(cluster)

    async def copy() -> bool:
        if await read_secret(client, namespace, wanted.name) is not None:
            return False
        await copy_secret(client, namespace, source)
        return True

    try:
        return await call(ctx, cluster, f"copy Secret {wanted.name}", copy)
    except StaleWrite:
        return False


async def delete_generated_secrets(
    ctx: TaskContext, cluster: str, namespace: str, selector: dict[str, str]
) -> list[str]:
    """When a zone is deleted: the component's generated Secrets in ``cluster``, once no
    member of the component (of any zone sharing the cluster and namespace) is left
    there. A zone added again later gets a copy of the source when it is applied."""
    component = {k: v for k, v in selector.items() if k in (APPLICATION, COMPONENT)}
    if len(component) < 2 or await list_pods(ctx, cluster, namespace, component):
        return []
    deleted: list[str] = []
    for obj in await list_objects(ctx, cluster, Secret, namespace, component):
        name = obj["metadata"]["name"]
        if SECRET_LABEL in (obj["metadata"].get("labels") or {}):
            await delete(ctx, cluster, Secret, name, namespace)
            deleted.append(name)
    return deleted
