"""The in-process Kubernetes API of one simulated cluster.

The HTTP server and in-process controllers both call :class:`ClusterAPI`, so a controller
sees exactly the semantics a real client sees: defaulting, validation, optimistic
concurrency, generation, finalizers, graceful pod deletion, garbage collection and
namespace termination all happen here, not in the HTTP layer.
"""

from __future__ import annotations

import base64
import contextlib
import json
import random
import uuid
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

import orjson

from milkyway.sim.apiserver import errors, fielderrors, naming, patching
from milkyway.sim.apiserver.admission import admit_pod, default_service_account
from milkyway.sim.apiserver.apply import record_update, server_side_apply
from milkyway.sim.apiserver.auth import evaluate_review
from milkyway.sim.apiserver.body_limits import plain_json
from milkyway.sim.apiserver.bootstrap import SYSTEM_NAMESPACES, default_rbac
from milkyway.sim.apiserver.builtin_updates import carry_over, check_update
from milkyway.sim.apiserver.container_runtime import ContainerRuntime
from milkyway.sim.apiserver.crds import CustomResources
from milkyway.sim.apiserver.defaults import ClusterIPAllocator, apply_defaults
from milkyway.sim.apiserver.deletion import Deletion, rfc3339
from milkyway.sim.apiserver.errors import ApiError, Cause
from milkyway.sim.apiserver.omitempty import drop_empty
from milkyway.sim.apiserver.patch_identity import check_patched_identity
from milkyway.sim.apiserver.pod_logs import PodLogs
from milkyway.sim.apiserver.resources import ResourceInfo, ResourceRegistry
from milkyway.sim.apiserver.schemas import BuiltinSchemas
from milkyway.sim.apiserver.selectors import (
    FieldSelector,
    LabelSelector,
    parse_field_selector,
    parse_label_selector,
)
from milkyway.sim.apiserver.serviceaccount_tokens import ServiceAccountTokens
from milkyway.sim.apiserver.serviceaccount_tokens import authenticate as authenticate_token
from milkyway.sim.apiserver.store import (
    ADDED,
    DEFAULT_HISTORY,
    MODIFIED,
    Event,
    Store,
    Watcher,
    WatchFilter,
    deep_copy,
)
from milkyway.sim.apiserver.subresources import Subresources
from milkyway.sim.apiserver.timevalues import check_times
from milkyway.sim.apiserver.validation import strict_decoding_error, validate_builtin

Obj = dict[str, Any]
Resource = ResourceInfo | str
EvictionCheck = Callable[["ClusterAPI", Obj, Obj], None]

FIELD_VALIDATION = ("Strict", "Warn", "Ignore")
PATCH_TYPES = ("merge", "json", "strategic", "apply")
_GENERATION_KINDS = {
    ("apps", "StatefulSet"),
    ("apps", "Deployment"),
    ("apps", "ReplicaSet"),
    ("apps", "DaemonSet"),
    ("", "ReplicationController"),
    ("batch", "Job"),
    ("batch", "CronJob"),
    ("networking.k8s.io", "Ingress"),
    ("networking.k8s.io", "NetworkPolicy"),
    ("policy", "PodDisruptionBudget"),
    ("apiextensions.k8s.io", "CustomResourceDefinition"),
}
_KEEP_STATUS_ON_CREATE = {("", "Node"), ("", "PersistentVolume"), ("", "Service")}
_SERVER_METADATA = (
    "uid",
    "resourceVersion",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "generation",
    "selfLink",
)
_NAME_CHARS = "bcdfghjklmnpqrstvwxz2456789"
_REVIEW_PLURALS = {
    "selfsubjectaccessreviews",
    "subjectaccessreviews",
    "localsubjectaccessreviews",
    "selfsubjectreviews",
}
_CRD_KEY = ("apiextensions.k8s.io", "customresourcedefinitions")
_NS_KEY = ("", "namespaces")
_POD_KEY = ("", "pods")
_SA_KEY = ("", "serviceaccounts")


class ClusterAPI(Deletion, Subresources, CustomResources):
    """The Kubernetes API of one cluster, in process. Every failure raises :class:`ApiError`.

    Resources are named by a :class:`ResourceInfo` or a string: ``"pods"``, ``"po"``,
    ``"Pod"``, ``"deployments.apps"`` or ``"apps/v1/deployments"`` (the group's preferred
    version when none is given). Objects are plain JSON-like dicts; every object returned
    is the caller's own copy, so mutating it changes nothing until it is written back.
    Calls are synchronous: each write is atomic on the event loop and watchers see it
    before the call returns.

    Reads:
      ``get(resource, name, *, namespace=None) -> dict``
      ``list(resource, *, namespace=None, label_selector=None, field_selector=None,
      limit=None, continue_=None, resource_version=None) -> dict`` (a ``<Kind>List`` with
      ``metadata.resourceVersion`` and ``metadata.continue``; selectors as strings
      ``"app=web,tier!=db"`` or parsed).
    Writes (each takes ``dry_run=False``, ``field_manager=None`` — managedFields are tracked
    only when a manager is given — ``field_validation="Strict"|"Warn"|"Ignore"`` (Strict
    in process so typos in controllers fail loudly; the HTTP default is Warn, as on a real
    server) and ``warnings: list[str] | None`` to collect warnings):
      ``create(obj, *, namespace=None) -> dict`` (409 AlreadyExists; ``generateName``)
      ``update(obj, *, namespace=None, subresource="") -> dict`` (409 Conflict when
      ``metadata.resourceVersion`` is stale; ``subresource="status"`` writes only status,
      a main-resource update never changes status)
      ``patch(resource, name, patch, *, patch_type="merge"|"json"|"strategic"|"apply",
      namespace=None, subresource="", force=False) -> dict``
      ``delete(resource, name, *, namespace=None, propagation_policy=None,
      grace_period_seconds=None, preconditions=None) -> dict`` (the object as deleted, or
      still present with ``deletionTimestamp`` while finalizers or a graceful pod
      termination hold it)
      ``delete_collection(resource, *, namespace=None, label_selector=None, ...)``
      ``get_scale``/``update_scale`` (``autoscaling/v1`` Scale), ``bind`` (pods/binding),
      ``evict`` (pods/eviction), ``read_log``/``write_log``/``stop_log`` (pods/log),
      ``review_access(review, *, user, groups)`` (SubjectAccessReviews against stored RBAC).
    Watching:
      ``watch(resource, *, namespace=None, label_selector=None, field_selector=None,
      resource_version=None) -> Watcher`` — an async-iterable stream of :class:`Event`
      (``type`` ADDED/MODIFIED/DELETED, ``object`` the stored object: treat as read-only,
      copy before changing). Without a resourceVersion it starts with ADDED events for the
      current objects; with one it replays later events from a bounded history, raising
      410 Expired if that is compacted. Objects moving in or out of the selectors arrive
      as ADDED or DELETED.
      ``subscribe(resource, callback, ...)`` calls ``callback(event)`` synchronously on
      each commit and returns a function that unsubscribes.

    Hooks for the controllers that run inside the simulator:
      ``register_kubelet()`` — while one is registered, deleting a scheduled pod with a
      grace period > 0 only sets ``deletionTimestamp``; the kubelet removes it later with
      ``delete(..., grace_period_seconds=0)``. Without one the pod goes at once.
      ``eviction_check`` — ``fn(api, pod, eviction)`` raising ApiError 429 when a
      PodDisruptionBudget forbids the eviction; by default every eviction is allowed.
      ``container_runtime`` — a :class:`ContainerRuntime` for pods whose containers run
      as real processes (logs, exec and port-forward reach them); None: all simulated.
    """

    def __init__(
        self,
        *,
        name: str = "cluster",
        kubernetes_version: str = "1.32",
        history: int = DEFAULT_HISTORY,
        clock: Callable[[], datetime] | None = None,
        bootstrap: bool = True,
    ) -> None:
        self.name = name
        self.kubernetes_version = kubernetes_version
        self.store = Store(history=history)
        self.registry = ResourceRegistry()
        self.clock = clock or (lambda: datetime.now(UTC))
        self.eviction_check: EvictionCheck | None = None
        self.container_runtime: ContainerRuntime | None = None
        self._kubelets = 0
        self._ips = ClusterIPAllocator()
        self._schemas: BuiltinSchemas | None = None
        self.logs = PodLogs(lambda: self.clock())
        self._random = random.Random()
        self._out: Callable[[Obj], Obj] = deep_copy
        self._keep_bodies = False
        self._resolved: dict[str, ResourceInfo] = {}
        self._resolved_generation = -1
        self.ca_pem: bytes | None = None
        """The cluster CA (PEM) that ``kube-root-ca.crt`` ConfigMaps publish, when served
        over TLS."""
        self.service_account_tokens = ServiceAccountTokens()
        if bootstrap:
            self.ensure_system_namespaces()

    def ensure_system_namespaces(self) -> None:
        """Create what a new cluster starts with (see :mod:`bootstrap`) where it is missing."""
        for ns in SYSTEM_NAMESPACES:
            if self.store.get(_NS_KEY, "", ns) is None:
                self.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
        for obj in default_rbac():
            info = self.registry.for_object(obj)
            if self.store.get(info.key, "", obj["metadata"]["name"]) is None:
                self.create(obj)
        for ns in list(self.store.objects(_NS_KEY)):
            self._ensure_default_service_account(ns)

    def _ensure_default_service_account(self, namespace: Obj) -> None:
        name = namespace["metadata"]["name"]
        if namespace["metadata"].get("deletionTimestamp"):
            return
        if self.store.get(_SA_KEY, name, "default") is None:
            self.create(default_service_account(name))

    def issue_token(
        self,
        namespace: str,
        service_account: str,
        *,
        audiences: list[str] | None = None,
        expiration_seconds: int = 3607,
        pod: str | None = None,
    ) -> tuple[str, datetime]:
        """A token (and its expiry) that authenticates as the ServiceAccount, optionally
        bound to a pod (it stops working when that pod goes); what a kubelet projects
        into a pod's ``kube-api-access`` volume."""
        account = self._stored(self.resource("serviceaccounts"), namespace, service_account)
        bound = None
        if pod is not None:
            pod_obj = self._stored(self.resource("pods"), namespace, pod)
            bound = (pod, pod_obj["metadata"]["uid"])
        return self.service_account_tokens.issue(
            namespace,
            service_account,
            account["metadata"]["uid"],
            now=self.clock(),
            audiences=audiences,
            expiration_seconds=expiration_seconds,
            pod=bound,
        )

    def authenticate_token(self, authorization: str | None) -> Any:
        """The ServiceAccount user a bearer token of this cluster stands for, or None."""
        return authenticate_token(
            self.service_account_tokens, self.store.get, authorization, self.clock()
        )

    # ----------------------------------------------------------------- plumbing

    @contextlib.contextmanager
    def sharing(self) -> Iterator[None]:
        """Within the block, writes return the stored object itself instead of a copy, and
        ``create`` and ``update`` keep the body they are given instead of copying it.

        For callers that only serialize the result and decode a fresh body per request
        (the HTTP layer): it saves two deep copies per write. The block must not await,
        the result must not be mutated, and the body must not be used after the call.
        """
        self._out = _identity
        self._keep_bodies = True
        try:
            yield
        finally:
            self._out = deep_copy
            self._keep_bodies = False

    @property
    def schemas(self) -> BuiltinSchemas:
        if self._schemas is None:
            self._schemas = BuiltinSchemas.for_version(self.kubernetes_version)
        return self._schemas

    @property
    def revision(self) -> int:
        return self.store.revision

    def now(self) -> str:
        return rfc3339(self.clock())

    def resource(self, resource: Resource) -> ResourceInfo:
        if isinstance(resource, ResourceInfo):
            return resource
        if self._resolved_generation != self.registry.generation:
            self._resolved.clear()
            self._resolved_generation = self.registry.generation
        info = self._resolved.get(resource)
        if info is None:
            info = self._resolved[resource] = self.registry.resolve(resource)
        return info

    def register_kubelet(self) -> Callable[[], None]:
        """Declare that a kubelet finishes graceful pod deletions; returns the unregister."""
        self._kubelets += 1
        done = False

        def unregister() -> None:
            nonlocal done
            if not done:
                done = True
                self._kubelets -= 1

        return unregister

    @property
    def kubelet_registered(self) -> bool:
        return self._kubelets > 0

    def _namespace_for(self, info: ResourceInfo, namespace: str | None) -> str:
        if not info.namespaced:
            return ""
        return namespace or "default"

    def _stored(self, info: ResourceInfo, namespace: str, name: str) -> Obj:
        obj = self.store.get(info.key, namespace, name)
        if obj is None:
            raise errors.not_found(info.group, info.plural, name)
        return obj

    def _as_version(self, info: ResourceInfo, obj: Obj) -> Obj:
        """Objects of a multi-version custom resource answer in the requested version."""
        if obj.get("apiVersion") != info.api_version:
            obj = dict(obj)
            obj["apiVersion"] = info.api_version
        return obj

    # ----------------------------------------------------------------- reads

    def get(self, resource: Resource, name: str, *, namespace: str | None = None) -> Obj:
        info = self.resource(resource)
        return deep_copy(self.get_stored(info, name, namespace=namespace))

    def get_stored(self, info: ResourceInfo, name: str, *, namespace: str | None = None) -> Obj:
        """The stored object itself (read-only; used by the HTTP layer to avoid copying)."""
        self._require_verb(info, "get")
        return self._as_version(
            info, self._stored(info, self._namespace_for(info, namespace), name)
        )

    def list(
        self,
        resource: Resource,
        *,
        namespace: str | None = None,
        label_selector: str | LabelSelector | None = None,
        field_selector: str | FieldSelector | None = None,
        limit: int | None = None,
        continue_: str | None = None,
        resource_version: str | None = None,
        resource_version_match: str | None = None,
    ) -> Obj:
        info = self.resource(resource)
        result = self.list_stored(
            info,
            namespace=namespace,
            label_selector=label_selector,
            field_selector=field_selector,
            limit=limit,
            continue_=continue_,
            resource_version=resource_version,
            resource_version_match=resource_version_match,
        )
        result["items"] = [deep_copy(o) for o in result["items"]]
        return result

    def list_stored(
        self,
        info: ResourceInfo,
        *,
        namespace: str | None = None,
        label_selector: str | LabelSelector | None = None,
        field_selector: str | FieldSelector | None = None,
        limit: int | None = None,
        continue_: str | None = None,
        resource_version: str | None = None,
        resource_version_match: str | None = None,
    ) -> Obj:
        """Like :meth:`list`, but the items are the stored objects (read-only).

        ``resource_version_match="Exact"`` lists the objects as they were at
        ``resource_version`` (410 Expired once the history no longer reaches it).
        """
        self._require_verb(info, "list")
        labels = self._labels(label_selector)
        fields = self._fields(info, field_selector)
        ns = namespace if info.namespaced and namespace else None
        exact_rv = _exact_revision(resource_version, resource_version_match)
        self._check_resource_version(resource_version)
        list_rv = self.store.revision
        after: tuple[str, str] | None = None
        if continue_:
            list_rv, after = _decode_continue(continue_)
        elif exact_rv is not None:
            list_rv = exact_rv
        items: list[Obj] = []
        more = False
        remaining = 0
        exact = fields.exact_name()
        if list_rv != self.store.revision:
            candidates: Iterable[tuple[str, str, Obj]] = self.store.sorted_objects_at(
                info.key, ns, list_rv
            )
        elif exact is not None and after is None:
            candidates = (
                [(ns or "", exact, o)]
                if ns is not None and (o := self.store.get(info.key, ns, exact)) is not None
                else [
                    (n, exact, o)
                    for n in self.store.namespaces_in_use(info.key)
                    if (o := self.store.get(info.key, n, exact)) is not None
                ]
                if ns is None
                else []
            )
        else:
            candidates = self.store.sorted_objects(info.key, ns)
        last: tuple[str, str] | None = None
        for obj_ns, obj_name, obj in candidates:
            if after is not None and (obj_ns, obj_name) <= after:
                continue
            if labels.requirements and not labels.matches(obj["metadata"].get("labels")):
                continue
            if fields.requirements and not fields.matches(obj):
                continue
            if limit and len(items) >= limit:
                more = True
                remaining += 1
                continue
            items.append(self._as_version(info, obj))
            last = (obj_ns, obj_name)
        metadata: Obj = {"resourceVersion": str(list_rv)}
        if more and last is not None:
            metadata["continue"] = _encode_continue(list_rv, last)
            metadata["remainingItemCount"] = remaining
        return {
            "apiVersion": info.api_version,
            "kind": info.list_kind,
            "metadata": metadata,
            "items": items,
        }

    def _check_resource_version(self, resource_version: str | None) -> None:
        if resource_version in (None, "", "0"):
            return
        try:
            wanted = int(resource_version)  # type: ignore[arg-type]
        except ValueError:
            raise errors.bad_request(
                f'invalid resourceVersion "{resource_version}": must be an integer'
            ) from None
        if wanted > self.store.revision:
            raise ApiError(
                504,
                "Timeout",
                f"Too large resource version: {wanted}, current: {self.store.revision}",
                causes=[Cause("ResourceVersionTooLarge", "Too large resource version")],
                retry_after_seconds=1,
            )

    def _labels(self, selector: str | LabelSelector | None) -> LabelSelector:
        if isinstance(selector, LabelSelector):
            return selector
        return parse_label_selector(selector)

    def _fields(self, info: ResourceInfo, selector: str | FieldSelector | None) -> FieldSelector:
        if isinstance(selector, FieldSelector):
            return selector
        return parse_field_selector(selector, info.plural, custom=info.custom)

    def _require_verb(self, info: ResourceInfo, verb: str) -> None:
        if verb not in info.verbs:
            raise errors.method_not_allowed(
                f'{info.resource_name} does not support "{verb}" (supported: '
                f"{', '.join(info.verbs)})"
            )

    # ----------------------------------------------------------------- watch

    def watch(
        self,
        resource: Resource,
        *,
        namespace: str | None = None,
        label_selector: str | LabelSelector | None = None,
        field_selector: str | FieldSelector | None = None,
        resource_version: str | None = None,
        send_initial_events: bool | None = None,
        callback: Callable[[Event], None] | None = None,
    ) -> Watcher:
        """Start watching; see the class docstring. 410 Expired if the version is compacted."""
        info = self.resource(resource)
        self._require_verb(info, "watch")
        flt = WatchFilter(
            namespace if info.namespaced and namespace else None,
            self._labels(label_selector),
            self._fields(info, field_selector),
        )
        since: int | None = None
        initial: list[Obj] | None = None
        if resource_version in (None, "", "0") or send_initial_events:
            initial = [o for o in self.store.objects(info.key, flt.namespace) if flt.matches(o)]
            initial.sort(key=lambda o: int(o["metadata"]["resourceVersion"]))
        if resource_version not in (None, "", "0") and not send_initial_events:
            self._check_resource_version(resource_version)
            since = int(resource_version)  # type: ignore[arg-type]
        return self.store.watch(info.key, flt, since=since, callback=callback, initial=initial)

    def subscribe(
        self,
        resource: Resource,
        callback: Callable[[Event], None],
        *,
        namespace: str | None = None,
        label_selector: str | LabelSelector | None = None,
        field_selector: str | FieldSelector | None = None,
        resource_version: str | None = None,
    ) -> Callable[[], None]:
        """Call ``callback(event)`` on every matching commit; returns the unsubscribe."""
        watcher = self.watch(
            resource,
            namespace=namespace,
            label_selector=label_selector,
            field_selector=field_selector,
            resource_version=resource_version,
            callback=callback,
        )
        return watcher.close

    # ----------------------------------------------------------------- create

    def create(
        self,
        obj: Obj,
        *,
        namespace: str | None = None,
        resource: Resource | None = None,
        dry_run: bool = False,
        field_manager: str | None = None,
        field_validation: str = "Strict",
        warnings: list[str] | None = None,
        applied: bool = False,
    ) -> Obj:
        """Create; ``applied`` (server-side apply) keeps the managedFields the body carries."""
        info = self._body_resource(obj, resource)
        self._require_verb(info, "create")
        if info.plural in _REVIEW_PLURALS:
            raise errors.bad_request(
                f"{info.kind} is evaluated per requesting user; use review_access()"
            )
        new = self._prepare_body(info, obj, given=True)
        md = new["metadata"]
        ns = self._body_namespace(info, md, namespace)
        if not md.get("name"):
            prefix = md.get("generateName")
            if not prefix or not isinstance(prefix, str):
                raise errors.invalid(
                    info.group,
                    info.kind,
                    "",
                    [
                        Cause(
                            "FieldValueRequired",
                            "name or generateName is required",
                            "metadata.name",
                        )
                    ],
                )
            md["name"] = self._generate_name(info, ns, prefix)
        name = md["name"]
        if info.namespaced:
            self._admit_namespace(ns)
        if info.custom:
            self._refuse_create_while_terminating(info)
        if info.key == _POD_KEY:
            admit_pod(new, ns, lambda sa: self.store.get(_SA_KEY, ns, sa), self._random)
        for key in _SERVER_METADATA:
            md.pop(key, None)
        managed_fields = md.pop("managedFields", None)
        if info.has_status and (info.group, info.kind) not in _KEEP_STATUS_ON_CREATE:
            new.pop("status", None)
        # The uid comes first: defaulting may read it (a Job's generated selector).
        md["uid"] = str(uuid.uuid4())
        new = self._default_and_validate(info, new, None, field_validation, warnings)
        if info.key == _CRD_KEY:
            self._prepare_crd(new)
        if self.store.get(info.key, ns, name) is not None:
            raise errors.already_exists(info.group, info.plural, name)
        md = new["metadata"]
        md["creationTimestamp"] = self.now()
        if self._tracks_generation(info):
            md["generation"] = 1
        if applied and managed_fields is not None:
            md["managedFields"] = managed_fields
        elif field_manager:
            new = self._record(None, new, field_manager, "Update", "", info)
        if dry_run:
            new["metadata"]["resourceVersion"] = ""
            return new
        self.store.commit(info.key, ADDED, new)
        if info.key == _CRD_KEY:
            self._serve_crd(new)
        if info.key == _NS_KEY:
            self._ensure_default_service_account(new)
        self._collect_if_orphaned(info, new)
        return self._as_version(info, self._out(new))

    def _body_resource(self, obj: Obj, resource: Resource | None) -> ResourceInfo:
        if not isinstance(obj, dict):
            raise errors.bad_request("the request body must be a JSON object")
        if resource is None:
            return self.registry.for_object(obj)
        info = self.resource(resource)
        api_version, kind = obj.get("apiVersion"), obj.get("kind")
        if (api_version and api_version != info.api_version) or (kind and kind != info.kind):
            raise errors.bad_request(
                f"the API version in the data ({api_version}) and kind ({kind}) do not match "
                f"the resource {info.resource_name} ({info.api_version}, {info.kind})"
            )
        return info

    def _prepare_body(
        self, info: ResourceInfo, obj: Obj, *, given: bool = False, status_only: bool = False
    ) -> Obj:
        """The API's own copy of a body; ``given`` bodies are kept under :meth:`sharing`.

        A ``status_only`` body (a status write) has only its status and metadata copied,
        the parts such a write reads; its managedFields stay the caller's until
        :func:`_own_managed_fields` settles them.
        """
        if given and self._keep_bodies:
            new = obj
        elif status_only and isinstance(obj.get("metadata"), dict):
            new = {k: v for k, v in obj.items() if k not in ("status", "metadata")}
            if "status" in obj:
                new["status"] = deep_copy(obj["status"])
            md = obj["metadata"]
            new["metadata"] = {k: deep_copy(v) for k, v in md.items() if k != "managedFields"}
            if "managedFields" in md:
                new["metadata"]["managedFields"] = md["managedFields"]
        else:
            new = deep_copy(obj)
        new["apiVersion"] = info.api_version
        new["kind"] = info.kind
        md = new.setdefault("metadata", {})
        if not isinstance(md, dict):
            raise errors.bad_request(
                f"metadata must be an object, got {type(md).__name__}: fix the manifest's "
                "metadata section"
            )
        return new

    def _body_namespace(self, info: ResourceInfo, md: Obj, namespace: str | None) -> str:
        if not info.namespaced:
            md.pop("namespace", None)
            return ""
        body_ns = md.get("namespace")
        if body_ns and namespace and body_ns != namespace:
            raise errors.bad_request(
                "the namespace of the provided object does not match the namespace sent on "
                f"the request ({body_ns!r} vs {namespace!r})"
            )
        ns = namespace or body_ns or "default"
        md["namespace"] = ns
        return ns

    def _generate_name(self, info: ResourceInfo, ns: str, prefix: str) -> str:
        for _ in range(16):
            suffix = "".join(self._random.choice(_NAME_CHARS) for _ in range(5))
            name = f"{prefix[:58]}{suffix}"
            if self.store.get(info.key, ns, name) is None:
                return name
        raise errors.already_exists(info.group, info.plural, prefix)

    def _admit_namespace(self, ns: str) -> None:
        namespace = self.store.get(_NS_KEY, "", ns)
        if namespace is None:
            raise errors.not_found("", "namespaces", ns)
        if namespace["metadata"].get("deletionTimestamp"):
            raise ApiError(
                403,
                "Forbidden",
                f"unable to create new content in namespace {ns} because it is being terminated",
                name=ns,
                kind="namespaces",
            )

    def _tracks_generation(self, info: ResourceInfo) -> bool:
        return info.custom or (info.group, info.kind) in _GENERATION_KINDS

    def _record(
        self,
        old: Obj | None,
        new: Obj,
        manager: str,
        operation: str,
        sub: str,
        info: ResourceInfo,
    ) -> Obj:
        return record_update(
            old,
            new,
            manager=manager,
            operation=operation,
            now=self.now(),
            subresource=sub,
            schema=self._schema_for(info),
            schemas=None if info.custom else self.schemas,
            owned=True,
        )

    # ----------------------------------------------------------------- validation

    def _default_and_validate(
        self,
        info: ResourceInfo,
        obj: Obj,
        old: Obj | None,
        field_validation: str,
        warnings: list[str] | None,
        subresource: str = "",
    ) -> Obj:
        if field_validation not in FIELD_VALIDATION:
            raise errors.bad_request(
                f'invalid fieldValidation "{field_validation}": use Strict, Warn or Ignore'
            )
        name = obj["metadata"].get("name", "")
        if info.custom:
            return self._validate_custom(info, obj, old, field_validation, warnings)
        apply_defaults(info.group, info.kind, obj, self._ips)
        definition = self.schemas.definition_name(info.gvk)
        # A status write changes only status and metadata; the rest was checked when stored.
        walked = (
            {k: obj[k] for k in ("metadata", "status") if k in obj}
            if subresource == "status"
            else obj
        )
        bad_time = check_times(walked, definition, self.schemas) if definition else None
        if bad_time is not None:
            raise errors.bad_request(
                f'{info.kind} in version "{info.version}" cannot be handled as a {info.kind}: '
                f"{bad_time}"
            )
        if definition:
            drop_empty(walked, definition, self.schemas)
        causes = validate_builtin(obj, self.schemas, strict=True)
        unknown = [c for c in causes if fielderrors.is_unknown_field(c)]
        causes = [c for c in causes if not fielderrors.is_unknown_field(c)]
        if unknown:
            if field_validation == "Strict":
                raise strict_decoding_error(info.kind, info.api_version, unknown)
            for cause in unknown:
                _remove_path(obj, cause.field)
                if field_validation == "Warn" and warnings is not None:
                    warnings.append(cause.message)
        mistyped = [c for c in causes if c.reason == fielderrors.TYPE_INVALID]
        if mistyped:
            # A built-in object with a wrongly typed field cannot be decoded at all: the real
            # server answers 400, not 422.
            cause = mistyped[0]
            raise errors.bad_request(
                f'{info.kind} in version "{info.version}" cannot be handled as a {info.kind}: '
                f"{cause.field}: {cause.message}"
            )
        if causes:
            raise errors.invalid(info.group, info.kind, name, causes)
        return obj

    def _validate_custom(
        self,
        info: ResourceInfo,
        obj: Obj,
        old: Obj | None,
        field_validation: str,
        warnings: list[str] | None,
    ) -> Obj:
        md = obj["metadata"]
        name = md.get("name", "")
        causes = [
            Cause("FieldValueInvalid", f"Invalid value: {json.dumps(name)}: {p}", "metadata.name")
            for p in (naming.dns1123_subdomain(name) if name else [])
        ]
        schema = info.schema
        if schema is not None:
            pruned, unknown = schema.prune_owned(obj)
            if unknown and field_validation == "Strict":
                from milkyway.sim.apiserver.validation import strict_decoding_error

                raise strict_decoding_error(
                    info.kind,
                    info.api_version,
                    [Cause("FieldValueInvalid", f'unknown field "{p}"', p) for p in unknown],
                )
            if unknown and field_validation == "Warn" and warnings is not None:
                warnings.extend(f'unknown field "{p}"' for p in unknown)
            obj = schema.default_owned(pruned)
            causes.extend(schema.validate(obj, old, group=info.group, kind=info.kind))
        if causes:
            raise errors.invalid(info.group, info.kind, name, causes)
        return obj

    # ----------------------------------------------------------------- update

    def update(
        self,
        obj: Obj,
        *,
        namespace: str | None = None,
        resource: Resource | None = None,
        name: str | None = None,
        subresource: str = "",
        dry_run: bool = False,
        field_manager: str | None = None,
        field_validation: str = "Strict",
        warnings: list[str] | None = None,
    ) -> Obj:
        """Replace an object (or its ``status``); 409 Conflict on a stale resourceVersion."""
        info = self._body_resource(obj, resource)
        self._require_verb(info, "update")
        status_only = subresource == "status" and not self._keep_bodies
        body = self._prepare_body(info, obj, given=True, status_only=status_only)
        md = body["metadata"]
        ns = self._body_namespace(info, md, namespace)
        if name is not None and md.get("name") and md["name"] != name:
            raise errors.bad_request(
                f"the name of the object ({md['name']}) does not match the name on the URL ({name})"
            )
        obj_name = md.get("name") or name
        if not obj_name:
            raise errors.bad_request("metadata.name is required to update an object")
        md["name"] = obj_name
        old = self._stored(info, ns, obj_name)
        if status_only and "managedFields" in md:
            md["managedFields"] = _own_managed_fields(md["managedFields"], old["metadata"])
        if subresource == "scale":
            return self.update_scale(
                info, obj_name, body, namespace=ns, dry_run=dry_run, field_manager=field_manager
            )
        return self._update(
            info,
            old,
            body,
            subresource=subresource,
            dry_run=dry_run,
            field_manager=field_manager,
            field_validation=field_validation,
            warnings=warnings,
            operation="Update",
        )

    def _update(
        self,
        info: ResourceInfo,
        old: Obj,
        body: Obj,
        *,
        subresource: str,
        dry_run: bool,
        field_manager: str | None,
        field_validation: str,
        warnings: list[str] | None,
        operation: str,
        managed: bool = False,
    ) -> Obj:
        """Replace ``old`` with ``body`` (or its status, or its finalizers), as a real API
        server does: preconditions, the new object, its identity kept, validation, the
        generation, field ownership, then the write."""
        self._check_update_target(info, old, body, subresource)
        new = _replacement(info, old, body, subresource, managed)
        old_md = old["metadata"]
        _keep_identity(info, old_md, new["metadata"])
        if not managed:
            _keep_requested_managed_fields(
                new["metadata"], body["metadata"].get("managedFields"), old_md, bool(field_manager)
            )
        if not subresource and not info.custom:
            carry_over(info.group, info.kind, old, new)
        new = self._default_and_validate(info, new, old, field_validation, warnings, subresource)
        if not subresource and not info.custom:
            refused = check_update(new, old, info.group, info.kind)
            if refused:
                raise errors.invalid(info.group, info.kind, old_md["name"], refused)
        self._set_generation(info, old, new)
        if info.key == _CRD_KEY:
            self._prepare_crd(new)
        if field_manager and not managed:
            new = self._record(old, new, field_manager, operation, subresource, info)
        new["metadata"]["resourceVersion"] = old_md["resourceVersion"]
        if _same(old, new):
            return self._as_version(info, self._out(old))
        if dry_run:
            return new
        return self._write_update(info, new)

    def _check_update_target(
        self, info: ResourceInfo, old: Obj, body: Obj, subresource: str
    ) -> None:
        """409 on a stale resourceVersion; 400 or 404 on a subresource that is not there."""
        old_md = old["metadata"]
        rv = body["metadata"].get("resourceVersion")
        if rv and rv != old_md["resourceVersion"]:
            raise errors.conflict(
                info.group,
                info.plural,
                old_md["name"],
                "the object has been modified; please apply your changes to the latest "
                "version and try again",
            )
        if subresource and subresource not in ("status", "finalize"):
            raise errors.bad_request(f"subresource {subresource!r} cannot be updated this way")
        if subresource and info.subresource(subresource) is None:
            raise errors.not_found(info.group, f"{info.plural}/{subresource}", old_md["name"])

    def _set_generation(self, info: ResourceInfo, old: Obj, new: Obj) -> None:
        """``metadata.generation`` moves when the spec changes, for kinds that track it."""
        md = new["metadata"]
        if self._tracks_generation(info):
            generation = old["metadata"].get("generation", 1)
            if _spec_changed(old, new, info.has_status):
                generation += 1
            md["generation"] = generation
        else:
            md.pop("generation", None)

    def _write_update(self, info: ResourceInfo, new: Obj) -> Obj:
        """Store the changed object: an object being deleted whose last finalizer went is
        removed; a changed CRD is served anew; a namespace being deleted is finished."""
        md = new["metadata"]
        if md.get("deletionTimestamp") and not md.get("finalizers") and self._may_remove(info, new):
            self._remove(info, new)
            return self._as_version(info, self._out(new))
        self.store.commit(info.key, MODIFIED, new)
        if info.key == _CRD_KEY:
            self._serve_crd(new)
        if info.key == _NS_KEY and md.get("deletionTimestamp"):
            self._finish_namespace(md["name"])
        return self._as_version(info, self._out(new))

    # ----------------------------------------------------------------- patch

    def patch(
        self,
        resource: Resource,
        name: str,
        patch: Any,
        *,
        patch_type: str = "merge",
        namespace: str | None = None,
        subresource: str = "",
        dry_run: bool = False,
        field_manager: str | None = None,
        force: bool = False,
        field_validation: str = "Strict",
        warnings: list[str] | None = None,
    ) -> Obj:
        """Patch with a JSON merge, JSON, strategic merge patch or server-side apply.

        ``apply`` creates the object when it does not exist and needs a field manager.
        """
        info = self.resource(resource)
        self._require_verb(info, "patch")
        ns = self._namespace_for(info, namespace)
        if patch_type not in PATCH_TYPES:
            raise errors.unsupported_media_type(patch_type)
        if patch_type == "apply":
            if not field_manager:
                raise errors.bad_request(
                    "PATCH with application/apply-patch+yaml requires fieldManager: set the "
                    "fieldManager query parameter (kubectl: --field-manager)"
                )
            if not isinstance(patch, dict):
                raise errors.bad_request("an apply patch must be a single object")
        elif patch_type == "json":
            if not isinstance(patch, list):
                raise errors.bad_request("a JSON patch must be a list of operations")
        elif not isinstance(patch, dict):
            raise errors.bad_request(f"a {patch_type} patch must be a JSON object")
        live = self.store.get(info.key, ns, name)
        if subresource == "scale":
            current = self.get_scale(info, name, namespace=ns)
            patched = self._apply_patch(info, current, patch, patch_type, None, False, True)
            return self.update_scale(
                info, name, patched, namespace=ns, dry_run=dry_run, field_manager=field_manager
            )
        if live is None:
            if patch_type != "apply" or subresource:
                raise errors.not_found(info.group, info.plural, name)
            body = self._body_for_apply(info, patch, ns, name)
            created = server_side_apply(
                None,
                body,
                manager=field_manager or "",
                force=force,
                schema=self._schema_for(info),
                schemas=None if info.custom else self.schemas,
                now=self.now(),
            )
            return self.create(
                created,
                namespace=ns,
                resource=info,
                dry_run=dry_run,
                field_validation=field_validation,
                warnings=warnings,
                applied=True,
            )
        if subresource and info.subresource(subresource) is None:
            raise errors.not_found(info.group, f"{info.plural}/{subresource}", name)
        live_v = self._as_version(info, live)
        if patch_type == "apply":
            patch = self._body_for_apply(info, patch, ns, name)
        patched = self._apply_patch(
            info, live_v, patch, patch_type, field_manager, force, False, subresource
        )
        if not isinstance(patched.get("metadata"), dict):
            raise errors.bad_request("the patch removed metadata; metadata must stay an object")
        check_patched_identity(info, patched, name, ns)
        if patch_type == "json":
            plain_json(patched)  # copy operations can double the object per operation
        patched["metadata"]["name"] = name
        if info.namespaced:
            patched["metadata"]["namespace"] = ns
        return self._update(
            info,
            live,
            self._prepare_body(info, patched),
            subresource=subresource,
            dry_run=dry_run,
            field_manager=field_manager,
            field_validation=field_validation,
            warnings=warnings,
            operation="Apply" if patch_type == "apply" else "Update",
            managed=patch_type == "apply",
        )

    def _body_for_apply(self, info: ResourceInfo, patch: Obj, ns: str, name: str) -> Obj:
        body = deep_copy(patch)
        if body.get("apiVersion") != info.api_version or body.get("kind") != info.kind:
            raise errors.bad_request(
                f"the apply configuration must have apiVersion {info.api_version!r} and kind "
                f"{info.kind!r} (got {body.get('apiVersion')!r}, {body.get('kind')!r})"
            )
        md = body.setdefault("metadata", {})
        if md.get("name", name) != name:
            raise errors.bad_request(
                f"the name of the object ({md.get('name')}) does not match the name on the URL "
                f"({name})"
            )
        md["name"] = name
        if info.namespaced:
            md["namespace"] = ns
        return body

    def _schema_for(self, info: ResourceInfo) -> Obj | None:
        """The definition apply and managedFields read list types and keys from."""
        if info.custom:
            return info.schema.schema if info.schema is not None else None
        return self.schemas.definition_for(info.gvk)

    def _apply_patch(
        self,
        info: ResourceInfo,
        live: Obj,
        patch: Any,
        patch_type: str,
        manager: str | None,
        force: bool,
        scale: bool,
        subresource: str = "",
    ) -> Obj:
        if patch_type == "merge":
            return patching.merge_patch(live, patch)
        if patch_type == "json":
            return patching.json_patch(live, patch)
        if patch_type == "strategic":
            if info.custom and not scale:
                raise errors.unsupported_patch_type_for_custom()
            gvk = ("autoscaling", "v1", "Scale") if scale else info.gvk
            schema = self.schemas.definition_for(gvk)
            if schema is None:
                return patching.merge_patch(live, patch)
            return patching.strategic_merge_patch(live, patch, schema, self.schemas)
        return server_side_apply(
            live,
            patch,
            manager=manager or "",
            force=force,
            schema=self._schema_for(info),
            schemas=None if info.custom else self.schemas,
            now=self.now(),
            subresource=subresource,
        )

    # ----------------------------------------------------------------- access reviews

    def review_access(self, review: Obj, *, user: str, groups: Iterable[str]) -> Obj:
        """Evaluate a (Self|Local)SubjectAccessReview against the stored RBAC objects."""
        return evaluate_review(self, review, user=user, groups=list(groups))


def _identity(obj: Obj) -> Obj:
    return obj


def _own_managed_fields(requested: Any, old_md: Obj) -> Any:
    """A copy of the managedFields a caller sent, or the stored ones when they are the same
    JSON (what a client that read the object sends back), which saves copying them."""
    live = old_md.get("managedFields")
    if live is not None and type(requested) is type(live):
        try:
            if orjson.dumps(requested) == orjson.dumps(live):
                return live
        except (TypeError, orjson.JSONEncodeError):
            pass
    return deep_copy(requested)


def _keep_requested_managed_fields(md: Obj, requested: Any, old_md: Obj, recorded: bool) -> None:
    """Keep the managedFields a write sends, as a real server does; the live ones otherwise.

    A recorded write hands them to ``record_update``, which reads ``[{}]`` as "clear them";
    an unrecorded one clears them itself.
    """
    if isinstance(requested, list) and requested:
        if recorded or requested != [{}]:
            md["managedFields"] = requested
        else:
            md.pop("managedFields", None)
    elif "managedFields" in old_md:
        md["managedFields"] = old_md["managedFields"]
    else:
        md.pop("managedFields", None)


def _spec_changed(old: Obj, new: Obj, has_status: bool) -> bool:
    skip = (
        {"metadata", "status", "apiVersion", "kind"}
        if has_status
        else {
            "metadata",
            "apiVersion",
            "kind",
        }
    )
    keys = (old.keys() | new.keys()) - skip
    return any(old.get(k) != new.get(k) for k in keys) or (
        old["metadata"].get("deletionTimestamp") != new["metadata"].get("deletionTimestamp")
    )


def _same(old: Obj, new: Obj) -> bool:
    if old.keys() != new.keys():
        return False
    for key in old:
        if key == "metadata":
            a, b = old["metadata"], new["metadata"]
            if a.keys() != b.keys():
                return False
            if any(a[k] != b[k] for k in a if k not in ("resourceVersion", "managedFields")):
                return False
            if _untimed(a.get("managedFields")) != _untimed(b.get("managedFields")):
                return False
        elif key != "apiVersion" and old[key] != new[key]:
            return False
    return True


def _untimed(entries: Any) -> Any:
    """managedFields without timestamps: a write that only moves a timestamp is a no-op."""
    if not isinstance(entries, list):
        return entries
    return [
        {k: v for k, v in e.items() if k != "time"} if isinstance(e, dict) else e for e in entries
    ]


def _exact_revision(resource_version: str | None, match: str | None) -> int | None:
    """The revision an ``Exact`` list reads at; None when the list reads the latest state."""
    if not match:
        return None
    if match not in ("Exact", "NotOlderThan"):
        raise errors.bad_request(
            f'invalid resourceVersionMatch "{match}": use "Exact" or "NotOlderThan"'
        )
    if resource_version in (None, ""):
        raise errors.bad_request(
            "resourceVersionMatch is forbidden unless resourceVersion is provided"
        )
    if match == "NotOlderThan":
        return None
    if resource_version == "0":
        raise errors.bad_request(
            f'resourceVersionMatch "{match}" is forbidden for resourceVersion "0"'
        )
    try:
        return int(resource_version)  # type: ignore[arg-type]
    except ValueError:
        raise errors.bad_request(
            f'invalid resourceVersion "{resource_version}": must be an integer'
        ) from None


def _encode_continue(rv: int, last: tuple[str, str]) -> str:
    raw = json.dumps({"rv": rv, "ns": last[0], "name": last[1]}).encode()
    return base64.urlsafe_b64encode(raw).decode()


def _decode_continue(token: str) -> tuple[int, tuple[str, str]]:
    try:
        data = json.loads(base64.urlsafe_b64decode(token.encode()))
        return int(data["rv"]), (str(data["ns"]), str(data["name"]))
    except (ValueError, KeyError, TypeError):
        raise errors.bad_request(
            "continue key is not valid: pass the metadata.continue value of the previous list "
            "unchanged"
        ) from None


def _remove_path(obj: Obj, field: str) -> None:
    """Drop the field at a rendered path such as ``spec.containers[0].bogus``."""
    tokens: list[str | int] = []
    for part in field.replace("]", "").split("."):
        pieces = part.split("[")
        if pieces[0]:
            tokens.append(pieces[0])
        tokens.extend(int(p) if p.isdigit() else p for p in pieces[1:])
    node: Any = obj
    for token in tokens[:-1]:
        if isinstance(node, list) and isinstance(token, int) and token < len(node):
            node = node[token]
        elif isinstance(node, dict) and str(token) in node:
            node = node[str(token)]
        else:
            return
    if isinstance(node, dict) and tokens:
        node.pop(str(tokens[-1]), None)


def _replacement(info: ResourceInfo, old: Obj, body: Obj, subresource: str, managed: bool) -> Obj:
    """The object an update writes: ``old`` with the status of ``body`` (``status``), with
    its finalizers (``finalize``, namespaces), or ``body`` keeping ``old``'s status."""
    old_md = old["metadata"]
    if subresource == "status":
        # The old status is replaced whole and managedFields are set later: copying either
        # would be wasted work.
        new = {k: deep_copy(v) for k, v in old.items() if k not in ("status", "metadata")}
        new["metadata"] = {k: deep_copy(v) for k, v in old_md.items() if k != "managedFields"}
        new["apiVersion"] = info.api_version
        if "status" in body:
            new["status"] = body["status"]
        else:
            new.pop("status", None)
        if managed:
            new["metadata"]["managedFields"] = body["metadata"].get("managedFields")
        return new
    if subresource == "finalize":
        new = deep_copy(old)
        new["spec"] = dict(new.get("spec") or {})
        new["spec"]["finalizers"] = (body.get("spec") or {}).get("finalizers") or []
        return new
    new = body
    if info.has_status:
        if "status" in old:
            new["status"] = deep_copy(old["status"])
        else:
            new.pop("status", None)
    return new


def _keep_identity(info: ResourceInfo, old_md: Obj, md: Obj) -> None:
    """What an update cannot change: uid, name, namespace, creation and deletion marks;
    and no finalizer may be added to an object being deleted (422)."""
    for key in ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds"):
        if key in old_md:
            md[key] = old_md[key]
        else:
            md.pop(key, None)
    md["name"] = old_md["name"]
    if "namespace" in old_md:
        md["namespace"] = old_md["namespace"]
    md.pop("selfLink", None)
    if not old_md.get("deletionTimestamp"):
        return
    added = set(md.get("finalizers") or ()) - set(old_md.get("finalizers") or ())
    if added:
        raise errors.invalid(
            info.group,
            info.kind,
            old_md["name"],
            [
                Cause(
                    "FieldValueForbidden",
                    "Forbidden: no new finalizers can be added if the object is being "
                    "deleted, found new finalizers " + json.dumps(sorted(added)),
                    "metadata.finalizers",
                )
            ],
        )
