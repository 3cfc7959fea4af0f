"""What a ComponentType may ask of the pods Milkyway renders, and what it may not.

A ComponentType is written by whoever may create cluster-scoped resources, but its pods
run next to every other data system of the member clusters. Settings that weaken the
pod's isolation are therefore refused unless the operator's configuration allows them
by name (see docs/component-types.md):

* ``addCapabilities``: only ``NET_BIND_SERVICE`` (what the Kubernetes "restricted" Pod
  Security Standard allows) without an allowance; ``ALL`` and ``SYS_ADMIN`` are never
  implied by anything else.
* ``writablePaths`` and ``dataPath``: no volume over ``/``, over a system directory
  (``/etc``, ``/usr``, ``/bin``, ``/proc``…), or over or above the service-account token
  (``/var/run/secrets/kubernetes.io/serviceaccount``), where a mounted volume would hide
  or replace what the kubelet puts there.
* ``serviceAccountToken: true``: only for the ComponentTypes the configuration lists.
"""

from __future__ import annotations

import posixpath
from typing import Any

import yaml
from pydantic import Field
from pydantic import ValidationError as PydanticValidationError

from milkyway.model.base import Model
from milkyway.model.component_type import ComponentType
from milkyway.model.errors import FieldError, ValidationFailed

SAFE_CAPABILITIES = frozenset({"NET_BIND_SERVICE"})
TOKEN_PATH = "/var/run/secrets/kubernetes.io/serviceaccount"
SYSTEM_PATHS = (
    "/bin",
    "/boot",
    "/dev",
    "/etc",
    "/lib",
    "/lib64",
    "/proc",
    "/root",
    "/run",
    "/sbin",
    "/sys",
    "/usr",
    "/var/run",
    TOKEN_PATH,
)
_FIX = "or allow it in the operator's security policy (see docs/component-types.md)"


class SecurityPolicy(Model):
    """The operator's allowances beyond the default pod security (``--security-policy``)."""

    allow_capabilities: list[str] = Field(default_factory=list)
    """Capabilities a ComponentType may add, e.g. ``[IPC_LOCK]``."""
    allow_paths: list[str] = Field(default_factory=list)
    """Paths a ComponentType may mount a writable or data volume on despite the rules."""
    allow_service_account_token: list[str] = Field(default_factory=list)
    """ComponentTypes (by name) whose pods may mount a service-account token."""


DEFAULT_POLICY = SecurityPolicy()


def load_security_policy(text: str) -> SecurityPolicy:
    """Parse a policy file (YAML); :class:`ValidationFailed` names what is wrong."""
    try:
        data: Any = yaml.safe_load(text) or {}
        return SecurityPolicy.model_validate(data)
    except yaml.YAMLError as exc:
        raise ValidationFailed(
            [FieldError("", None, f"not valid YAML: {exc}", "fix the policy file")]
        ) from None
    except PydanticValidationError as exc:
        raise ValidationFailed(
            [
                FieldError(
                    ".".join(str(p) for p in e["loc"]),
                    None,
                    e["msg"],
                    "use allowCapabilities, allowPaths and allowServiceAccountToken lists",
                )
                for e in exc.errors()
            ]
        ) from None


def security_errors(
    component_type: ComponentType, policy: SecurityPolicy = DEFAULT_POLICY
) -> list[FieldError]:
    """Every setting of ``component_type`` that the policy does not allow."""
    container = component_type.spec.container
    name = component_type.name
    where = "spec.container"
    errors: list[FieldError] = []
    allowed = SAFE_CAPABILITIES | set(policy.allow_capabilities)
    for i, capability in enumerate(container.add_capabilities):
        if capability.upper().removeprefix("CAP_") not in allowed:
            errors.append(
                FieldError(
                    f"{where}.addCapabilities[{i}]",
                    capability,
                    f"adding capability {capability} weakens every pod of the type",
                    f"remove it, {_FIX}: allowCapabilities: [{capability}]",
                )
            )
    paths = [(f"{where}.writablePaths[{i}]", p) for i, p in enumerate(container.writable_paths)]
    paths.append((f"{where}.dataPath", container.data_path))
    for field, path in paths:
        problem = _path_problem(path, policy)
        if problem:
            errors.append(
                FieldError(
                    field, path, problem, f"mount it elsewhere, {_FIX}: allowPaths: [{path}]"
                )
            )
    if container.service_account_token and name not in policy.allow_service_account_token:
        errors.append(
            FieldError(
                f"{where}.serviceAccountToken",
                True,
                "mounting a service-account token lets the software call the Kubernetes API",
                f"set it to false, {_FIX}: allowServiceAccountToken: [{name}]",
            )
        )
    return errors


def _path_problem(path: str, policy: SecurityPolicy) -> str | None:
    if path in policy.allow_paths:
        return None
    if not path.startswith("/") or ".." in path.split("/"):
        return "a mount path must be absolute, without '..'"
    clean = posixpath.normpath(path)
    if clean == "/":
        return "a volume on / would replace the image's whole filesystem"
    if _overlaps(clean, TOKEN_PATH):
        return f"a volume on {path} would hide or replace the service-account token"
    for system in SYSTEM_PATHS:
        if _overlaps(clean, system):
            return f"a volume on {path} would replace the system directory {system}"
    return None


def _overlaps(path: str, protected: str) -> bool:
    """``path`` is ``protected``, inside it, or one of its ancestors."""
    return path == protected or protected.startswith(path + "/") or path.startswith(protected + "/")
