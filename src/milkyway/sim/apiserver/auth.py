"""Who is calling (bearer tokens) and whether they may (RBAC against the stored objects).

Tokens come from a file in kube-apiserver's ``--token-auth-file`` format
(``token,user,uid,"group1,group2"``), so the same file could configure a real server.
Members of ``system:masters`` bypass RBAC, as on a real cluster; everyone else is judged
by the Roles and bindings stored in the cluster itself.
"""

from __future__ import annotations

import csv
import io
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from milkyway.sim.apiserver.errors import ApiError, bad_request, forbidden

if TYPE_CHECKING:
    from milkyway.sim.apiserver.api import ClusterAPI

SUPERUSER_GROUP = "system:masters"
AUTHENTICATED_GROUP = "system:authenticated"
ADMIN_USER = "admin"


@dataclass(frozen=True)
class User:
    name: str
    uid: str = ""
    groups: tuple[str, ...] = ()


class TokenAuthenticator:
    """Maps ``Authorization: Bearer <token>`` to a :class:`User`; unknown tokens map to None."""

    def __init__(self, users: dict[str, User]) -> None:
        self._users = dict(users)

    @classmethod
    def from_file(cls, path: str | Path) -> TokenAuthenticator:
        return cls(parse_token_file(Path(path).read_text()))

    def authenticate(self, authorization: str | None) -> User | None:
        if not authorization:
            return None
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        return self._users.get(token.strip())

    def add(self, token: str, user: User) -> None:
        self._users[token] = user

    def tokens(self) -> dict[str, User]:
        return dict(self._users)


def parse_token_file(text: str) -> dict[str, User]:
    users: dict[str, User] = {}
    for number, row in enumerate(csv.reader(io.StringIO(text)), start=1):
        if not row or not row[0].strip() or row[0].startswith("#"):
            continue
        if len(row) < 2:
            raise ValueError(
                f'token file line {number}: expected token,user[,uid[,"group1,group2"]], '
                f"got {','.join(row)!r}"
            )
        groups = tuple(g.strip() for g in row[3].split(",") if g.strip()) if len(row) > 3 else ()
        users[row[0].strip()] = User(
            row[1].strip(), row[2].strip() if len(row) > 2 else "", (*groups, AUTHENTICATED_GROUP)
        )
    return users


def render_token_file(users: dict[str, User]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    for token, user in users.items():
        groups = [g for g in user.groups if g != AUTHENTICATED_GROUP]
        writer.writerow([token, user.name, user.uid or user.name, ",".join(groups)])
    return out.getvalue()


def admin_tokens() -> dict[str, User]:
    """A fresh admin token for a new simulator (member of ``system:masters``)."""
    return {
        secrets.token_urlsafe(24): User(
            ADMIN_USER, ADMIN_USER, (SUPERUSER_GROUP, AUTHENTICATED_GROUP)
        )
    }


def _rbac_objects(api: ClusterAPI) -> dict[str, list[dict[str, Any]]]:
    group = "rbac.authorization.k8s.io"
    return {
        "roles": list(api.store.objects((group, "roles"))),
        "cluster_roles": list(api.store.objects((group, "clusterroles"))),
        "role_bindings": list(api.store.objects((group, "rolebindings"))),
        "cluster_role_bindings": list(api.store.objects((group, "clusterrolebindings"))),
    }


def authorize(
    api: ClusterAPI,
    *,
    user: str,
    groups: Iterable[str],
    verb: str,
    api_group: str = "",
    resource: str = "",
    subresource: str = "",
    name: str = "",
    namespace: str = "",
    path: str = "",
    resource_request: bool = True,
) -> tuple[bool, str]:
    """(allowed, reason) for one request, by the cluster's stored RBAC objects."""
    groups = tuple(groups)
    if SUPERUSER_GROUP in groups:
        return True, f"user is a member of {SUPERUSER_GROUP}"
    from milkyway.sim.apiserver.rbac import RequestAttributes
    from milkyway.sim.apiserver.rbac import authorize as rbac_authorize

    attrs = RequestAttributes(
        user=user,
        groups=groups,
        verb=verb,
        api_group=api_group,
        resource=resource,
        subresource=subresource,
        name=name,
        namespace=namespace,
        path=path,
        resource_request=resource_request,
    )
    decision = rbac_authorize(attrs, **_rbac_objects(api))
    return decision.allowed, decision.reason


def evaluate_review(
    api: ClusterAPI, review: dict[str, Any], *, user: str, groups: list[str]
) -> dict[str, Any]:
    """Answer a SelfSubjectAccessReview, SubjectAccessReview or LocalSubjectAccessReview."""
    kind = review.get("kind", "")
    spec = review.get("spec")
    if not isinstance(spec, dict):
        raise bad_request(
            f"{kind or 'the review'} needs a spec with resourceAttributes or nonResourceAttributes"
        )
    if kind == "SelfSubjectAccessReview":
        subject, subject_groups = user, groups
    else:
        subject = spec.get("user") or ""
        subject_groups = list(spec.get("groups") or [])
        if not subject and not subject_groups:
            raise bad_request("spec.user or spec.groups is required in a SubjectAccessReview")
    resource_attrs = spec.get("resourceAttributes")
    non_resource = spec.get("nonResourceAttributes")
    if isinstance(resource_attrs, dict):
        namespace = resource_attrs.get("namespace", "")
        if kind == "LocalSubjectAccessReview":
            namespace = (review.get("metadata") or {}).get("namespace") or namespace
        allowed, reason = authorize(
            api,
            user=subject,
            groups=subject_groups,
            verb=resource_attrs.get("verb", ""),
            api_group=resource_attrs.get("group", ""),
            resource=resource_attrs.get("resource", ""),
            subresource=resource_attrs.get("subresource", ""),
            name=resource_attrs.get("name", ""),
            namespace=namespace,
        )
    elif isinstance(non_resource, dict):
        allowed, reason = authorize(
            api,
            user=subject,
            groups=subject_groups,
            verb=non_resource.get("verb", ""),
            path=non_resource.get("path", ""),
            resource_request=False,
        )
    else:
        raise bad_request(
            "spec.resourceAttributes or spec.nonResourceAttributes is required in an access review"
        )
    out = dict(review)
    out.setdefault("apiVersion", "authorization.k8s.io/v1")
    out["metadata"] = {"creationTimestamp": None, **(review.get("metadata") or {})}
    status: dict[str, Any] = {"allowed": allowed}
    if reason:
        status["reason"] = reason
    out["status"] = status
    return out


IMPERSONATE_USER = "Impersonate-User"
IMPERSONATE_GROUP = "Impersonate-Group"
IMPERSONATE_UID = "Impersonate-Uid"
IMPERSONATE_EXTRA_PREFIX = "Impersonate-Extra-"
_SA_PREFIX = "system:serviceaccount:"
_UNAUTHENTICATED_USER = "system:anonymous"


def impersonate(
    api: ClusterAPI,
    caller: User,
    headers: Mapping[str, str] | Any,
    *,
    check: bool = True,
) -> User:
    """The user a request acts as: ``caller`` itself, or the one named by its
    ``Impersonate-User``/``Impersonate-Group``/``Impersonate-Uid`` headers when ``caller``
    holds the ``impersonate`` verb on each of them (users, groups, serviceaccounts, uids).

    As on a real API server, the impersonated user gets ``system:authenticated`` (and a
    service account its ``system:serviceaccounts`` groups); a refusal is the 403 a real
    server sends, naming the first thing the caller may not impersonate."""
    name = headers.get(IMPERSONATE_USER)
    groups = _all_values(headers, IMPERSONATE_GROUP)
    uid = headers.get(IMPERSONATE_UID)
    extras = [k for k in headers if k.lower().startswith(IMPERSONATE_EXTRA_PREFIX.lower())]
    if name is None:
        if groups or uid or extras:
            requested = [f"{{Group {g}}}" for g in groups]
            if uid:
                requested.append(f"{{UID {uid}}}")
            raise ApiError(
                500,
                "InternalError",
                f"Internal error occurred: requested [{' '.join(requested)}] "
                "without impersonating a user",
            )
        return caller
    checks: list[tuple[str, str, str, str]] = []  # (api group, resource, name, namespace)
    if name.startswith(_SA_PREFIX):
        namespace, _, account = name[len(_SA_PREFIX) :].partition(":")
        checks.append(("", "serviceaccounts", account, namespace))
    else:
        checks.append(("", "users", name, ""))
    checks.extend(("", "groups", group, "") for group in groups)
    if uid:
        checks.append(("authentication.k8s.io", "uids", uid, ""))
    for api_group, resource, target, namespace in checks:
        if not check:
            break
        allowed, _ = authorize(
            api,
            user=caller.name,
            groups=caller.groups,
            verb="impersonate",
            api_group=api_group,
            resource=resource,
            name=target,
            namespace=namespace,
        )
        if not allowed:
            raise forbidden(caller.name, "impersonate", api_group, resource, target, namespace)
    final_groups = list(groups)
    if name.startswith(_SA_PREFIX):
        namespace = name[len(_SA_PREFIX) :].partition(":")[0]
        for implied in ("system:serviceaccounts", f"system:serviceaccounts:{namespace}"):
            if implied not in final_groups:
                final_groups.append(implied)
    if name != _UNAUTHENTICATED_USER and AUTHENTICATED_GROUP not in final_groups:
        final_groups.append(AUTHENTICATED_GROUP)
    return User(name, uid or "", tuple(final_groups))


def _all_values(headers: Mapping[str, str] | Any, key: str) -> list[str]:
    """Every value of a repeated header (aiohttp's multidict keeps each one)."""
    getall = getattr(headers, "getall", None)
    if getall is not None:
        return [str(v) for v in getall(key, [])]
    value = headers.get(key)
    return [value] if value is not None else []


def self_subject_review(user: User) -> dict[str, Any]:
    """``kubectl auth whoami``: the SelfSubjectReview naming who the request came as."""
    info: dict[str, Any] = {"username": user.name, "groups": list(user.groups)}
    if user.uid:
        info["uid"] = user.uid
    return {
        "kind": "SelfSubjectReview",
        "apiVersion": "authentication.k8s.io/v1",
        "metadata": {"creationTimestamp": None},
        "status": {"userInfo": info},
    }
