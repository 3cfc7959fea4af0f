"""Secrets Milkyway generates for a component and rotates through the member agents.

One Secret per declared ``agent.secrets[]`` entry with ``generate``, named
``<application>-<component>-<secret>``. The copy in the component's first zone is the
source of truth; every other zone holds a copy of it. Each write of the source carries
the rotation that made it (``secret-rotation``: a FlowRun's name, or ``initial``) and a
version number, so a rotation step run again after a crash finds its own write and does
not make a second value.

A rotation writes the new value under the generator's key and keeps the value it replaces
under ``<key>.previous`` until every member has applied the new one; retiring drops it.
"""

from __future__ import annotations

import base64
import secrets
import string
from collections.abc import Mapping
from typing import Any

from lightkube import AsyncClient
from lightkube.core.exceptions import ApiError
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.core_v1 import Secret

from milkyway.kube.agent_contract import files_hash
from milkyway.kube.labels import APPLICATION, COMPONENT

ROTATION_ANNOTATION = "milkyway.ebay.com/secret-rotation"
"""The rotation that wrote the Secret's value: a FlowRun's name, or ``initial``."""
VERSION_ANNOTATION = "milkyway.ebay.com/secret-version"
"""How many values the Secret has had: 1 when created, one more per rotation."""
SECRET_LABEL = "milkyway.ebay.com/generated-secret"
"""On every generated Secret: the declared secret's name."""
SECRET_SOURCE = "milkyway.ebay.com/secret-source"
"""On a zone's ConfigMap: the cluster whose copy of the component's generated Secrets is
the source of truth (the component's first zone)."""
INITIAL = "initial"
PREVIOUS_SUFFIX = ".previous"

ALPHABETS: Mapping[str, str] = {
    "alphanumeric": string.ascii_letters + string.digits,
    "hex": "0123456789abcdef",
    "base64url": string.ascii_letters + string.digits + "-_",
}


class StaleWrite(Exception):
    """The Secret changed between reading and writing it (another writer won)."""


async def _replace(client: AsyncClient, body: Secret, doing: str) -> dict[str, Any]:
    """Replace the Secret ``body`` conditionally on the resourceVersion it carries; a
    conflict is :class:`StaleWrite` ("changed while it was ``doing``")."""
    try:
        return _as_dict(await client.replace(body))
    except ApiError as error:
        if error.status.code == 409:
            metadata = body.metadata
            raise StaleWrite(
                f"Secret {metadata.namespace}/{metadata.name} changed while it was {doing}"
            ) from None
        raise


def generated_secret_name(application: str, component: str, secret: str) -> str:
    return f"{application}-{component}-{secret}"


def new_value(length: int, alphabet: str) -> str:
    """``length`` characters of ``alphabet`` (a name in :data:`ALPHABETS`) drawn from the
    operating system's cryptographic random source."""
    chars = ALPHABETS[alphabet]
    return "".join(secrets.choice(chars) for _ in range(length))


def secret_files(obj: Mapping[str, Any]) -> dict[str, bytes]:
    """The files a Secret's volume shows, as the agent reads them."""
    return {name: base64.b64decode(value) for name, value in (obj.get("data") or {}).items()}


def secret_version(obj: Mapping[str, Any]) -> str:
    """The agent's name for this Secret's content (``sha256:…`` of its files)."""
    return files_hash(secret_files(obj))


def annotations_of(obj: Mapping[str, Any]) -> dict[str, str]:
    return dict((obj.get("metadata") or {}).get("annotations") or {})


def _encoded(files: Mapping[str, str]) -> dict[str, str]:
    return {name: base64.b64encode(value.encode()).decode() for name, value in files.items()}


def _as_dict(secret: Secret) -> dict[str, Any]:
    return secret.to_dict()


async def read_secret(client: AsyncClient, namespace: str, name: str) -> dict[str, Any] | None:
    try:
        return _as_dict(await client.get(Secret, name, namespace=namespace))
    except ApiError as error:
        if error.status.code == 404:
            return None
        raise


def _secret(
    namespace: str,
    name: str,
    data: Mapping[str, str],
    annotations: Mapping[str, str],
    labels: Mapping[str, str],
    resource_version: str | None = None,
) -> Secret:
    return Secret(
        metadata=ObjectMeta(
            name=name,
            namespace=namespace,
            labels=dict(labels),
            annotations=dict(annotations),
            resourceVersion=resource_version,
        ),
        type="Opaque",
        data=dict(data),
    )


def secret_labels(application: str, component: str, secret: str) -> dict[str, str]:
    return {APPLICATION: application, COMPONENT: component, SECRET_LABEL: secret}


async def ensure_source(
    client: AsyncClient,
    namespace: str,
    name: str,
    key: str,
    value: str,
    labels: Mapping[str, str],
) -> dict[str, Any]:
    """The source Secret, created with ``value`` under ``key`` if it is missing. Two
    writers racing both end with the one value the API server accepted first."""
    found = await read_secret(client, namespace, name)
    if found is not None:
        return found
    body = _secret(
        namespace,
        name,
        _encoded({key: value}),
        {ROTATION_ANNOTATION: INITIAL, VERSION_ANNOTATION: "1"},
        labels,
    )
    try:
        return _as_dict(await client.create(body))
    except ApiError as error:
        if error.status.code != 409:
            raise
    found = await read_secret(client, namespace, name)
    if found is None:
        raise StaleWrite(f"Secret {namespace}/{name} was deleted while it was created")
    return found


async def write_rotation(
    client: AsyncClient,
    namespace: str,
    name: str,
    key: str,
    value: str,
    rotation: str,
) -> dict[str, Any]:
    """Write ``value`` as the new version of the source Secret for ``rotation``, exactly
    once: a source that already carries ``rotation`` is returned unchanged (the step ran
    before), and the write is conditional on the resourceVersion read, so of two attempts
    racing only one lands (the other raises :class:`StaleWrite` and, read again, finds
    the first one's value)."""
    found = await read_secret(client, namespace, name)
    if found is None:
        raise LookupError(f"Secret {namespace}/{name} (the source of truth) does not exist")
    annotations = annotations_of(found)
    if annotations.get(ROTATION_ANNOTATION) == rotation:
        return found
    files = {k: v.decode() for k, v in secret_files(found).items()}
    data = {key: value}
    if key in files:
        data[key + PREVIOUS_SUFFIX] = files[key]
    version = int(annotations.get(VERSION_ANNOTATION, "1") or "1") + 1
    annotations.update({ROTATION_ANNOTATION: rotation, VERSION_ANNOTATION: str(version)})
    metadata = found.get("metadata") or {}
    body = _secret(
        namespace,
        name,
        _encoded(data),
        annotations,
        metadata.get("labels") or {},
        resource_version=metadata.get("resourceVersion"),
    )
    return await _replace(client, body, "rotated")


async def retire_previous(
    client: AsyncClient, namespace: str, name: str, key: str, rotation: str
) -> dict[str, Any]:
    """Drop the value ``rotation`` replaced from the source Secret (conditionally, like
    :func:`write_rotation`); nothing to drop is success."""
    found = await read_secret(client, namespace, name)
    if found is None:
        raise LookupError(f"Secret {namespace}/{name} (the source of truth) does not exist")
    written_by = annotations_of(found).get(ROTATION_ANNOTATION)
    if written_by != rotation:
        raise LookupError(
            f"Secret {namespace}/{name} was last written by {written_by!r}, not {rotation!r}"
        )
    data = dict(found.get("data") or {})
    if data.pop(key + PREVIOUS_SUFFIX, None) is None:
        return found
    metadata = found.get("metadata") or {}
    body = _secret(
        namespace,
        name,
        data,
        annotations_of(found),
        metadata.get("labels") or {},
        resource_version=metadata.get("resourceVersion"),
    )
    return await _replace(client, body, "retired")


def same_content(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    keys = (ROTATION_ANNOTATION, VERSION_ANNOTATION)
    return (a.get("data") or {}) == (b.get("data") or {}) and all(
        annotations_of(a).get(k) == annotations_of(b).get(k) for k in keys
    )


async def copy_secret(
    client: AsyncClient, namespace: str, source: Mapping[str, Any]
) -> dict[str, Any]:
    """Make the Secret in ``client``'s cluster a copy of ``source`` (data, rotation and
    version): created if missing, replaced (conditionally) if it differs, left alone if
    it is already the same."""
    metadata = source.get("metadata") or {}
    name = metadata["name"]
    keep = {k: v for k, v in annotations_of(source).items() if k.startswith("milkyway.ebay.com/")}
    found = await read_secret(client, namespace, name)
    if found is not None and same_content(found, source):
        return found
    body = _secret(
        namespace,
        name,
        source.get("data") or {},
        keep,
        metadata.get("labels") or {},
        resource_version=((found or {}).get("metadata") or {}).get("resourceVersion"),
    )
    if found is None:
        try:
            return _as_dict(await client.create(body))
        except ApiError as error:
            if error.status.code == 409:
                raise StaleWrite(f"Secret {namespace}/{name} was created meanwhile") from None
            raise
    return await _replace(client, body, "copied")
