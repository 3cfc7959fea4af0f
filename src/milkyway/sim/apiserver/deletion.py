"""Deletion as the API server and its garbage collector perform it.

Finalizers, propagation policies (Background, Foreground, Orphan), owner-reference garbage
collection, graceful pod termination and namespace termination all happen synchronously
inside the deleting call, so callers and watchers see the finished outcome in order.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from milkyway.sim.apiserver import errors
from milkyway.sim.apiserver.errors import ApiError
from milkyway.sim.apiserver.pod_logs import PodLogs
from milkyway.sim.apiserver.resources import ResourceInfo, ResourceRegistry
from milkyway.sim.apiserver.selectors import FieldSelector, LabelSelector
from milkyway.sim.apiserver.store import DELETED, MODIFIED, Store, deep_copy

if TYPE_CHECKING:
    from milkyway.sim.apiserver.api import Resource

Obj = dict[str, Any]
_CRD_KEY = ("apiextensions.k8s.io", "customresourcedefinitions")
_NS_KEY = ("", "namespaces")
_POD_KEY = ("", "pods")


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Deletion:
    """The deletion half of :class:`ClusterAPI`."""

    store: Store
    registry: ResourceRegistry
    clock: Callable[[], datetime]
    logs: PodLogs

    # ----------------------------------------------------------------- delete

    def delete(
        self,
        resource: Resource,
        name: str,
        *,
        namespace: str | None = None,
        propagation_policy: str | None = None,
        grace_period_seconds: int | None = None,
        preconditions: Obj | None = None,
        dry_run: bool = False,
    ) -> Obj:
        info = self.resource(resource)
        obj, _removed = self.delete_object(
            info,
            name,
            namespace=namespace,
            propagation_policy=propagation_policy,
            grace_period_seconds=grace_period_seconds,
            preconditions=preconditions,
            dry_run=dry_run,
        )
        return deep_copy(obj)

    def delete_object(
        self,
        info: ResourceInfo,
        name: str,
        *,
        namespace: str | None = None,
        propagation_policy: str | None = None,
        grace_period_seconds: int | None = None,
        preconditions: Obj | None = None,
        dry_run: bool = False,
    ) -> tuple[Obj, bool]:
        """Delete; returns (object, removed) — ``removed`` is False while something holds it."""
        self._require_verb(info, "delete")
        ns = self._namespace_for(info, namespace)
        old = self._stored(info, ns, name)
        md = old["metadata"]
        for key, have in (("uid", md.get("uid")), ("resourceVersion", md.get("resourceVersion"))):
            want = (preconditions or {}).get(key)
            if want and want != have:
                raise errors.conflict(
                    info.group,
                    info.plural,
                    name,
                    f"Precondition failed: {key}: {want}, {key} in object meta: {have}",
                )
        if propagation_policy not in (None, "Foreground", "Background", "Orphan"):
            raise errors.bad_request(
                f'invalid propagationPolicy "{propagation_policy}": use Foreground, '
                "Background or Orphan"
            )
        if grace_period_seconds is not None and grace_period_seconds < 0:
            raise errors.bad_request("gracePeriodSeconds must be 0 or more")
        if dry_run:
            return self._as_version(info, old), True
        if info.key == _NS_KEY:
            return self._delete_namespace(old)
        finalizers = list(md.get("finalizers") or [])
        if propagation_policy == "Orphan" and "orphan" not in finalizers:
            finalizers.append("orphan")
        if propagation_policy == "Foreground" and "foregroundDeletion" not in finalizers:
            finalizers.append("foregroundDeletion")
        grace = self._pod_grace(info, old, grace_period_seconds)
        if not finalizers and grace == 0:
            self._remove(info, old)
            return self._as_version(info, old), True
        if md.get("deletionTimestamp") and finalizers == list(md.get("finalizers") or []):
            current = md.get("deletionGracePeriodSeconds", 0)
            if grace >= current:
                return self._as_version(info, old), False
        new = deep_copy(old)
        nmd = new["metadata"]
        moment = self.clock() + timedelta(seconds=grace)
        if not nmd.get("deletionTimestamp") or grace < nmd.get("deletionGracePeriodSeconds", 0):
            nmd["deletionTimestamp"] = rfc3339(moment)
        nmd["deletionGracePeriodSeconds"] = grace
        nmd["finalizers"] = finalizers
        if not finalizers:
            del nmd["finalizers"]
        if self._tracks_generation(info):
            nmd["generation"] = nmd.get("generation", 1) + 1
        if not finalizers and grace == 0:
            self._remove(info, new)
            return self._as_version(info, new), True
        self.store.commit(info.key, MODIFIED, new)
        self._run_deletion_finalizers(info, new)
        still = self.store.get(info.key, ns, name)
        return self._as_version(info, still or new), still is None

    def _pod_grace(self, info: ResourceInfo, pod: Obj, requested: int | None) -> int:
        if info.key != _POD_KEY:
            return 0
        spec = pod.get("spec") or {}
        if not self.kubelet_registered or not spec.get("nodeName"):
            return 0
        if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
            return 0
        if requested is not None:
            return requested
        return int(spec.get("terminationGracePeriodSeconds", 30) or 0)

    def _may_remove(self, info: ResourceInfo, obj: Obj) -> bool:
        """Pods with a pending graceful termination wait for the kubelet."""
        if info.key != _POD_KEY or not self.kubelet_registered:
            return True
        return not obj["metadata"].get("deletionGracePeriodSeconds")

    def delete_collection(
        self,
        resource: Resource,
        *,
        namespace: str | None = None,
        label_selector: str | LabelSelector | None = None,
        field_selector: str | FieldSelector | None = None,
        propagation_policy: str | None = None,
        grace_period_seconds: int | None = None,
        dry_run: bool = False,
    ) -> Obj:
        info = self.resource(resource)
        self._require_verb(info, "deletecollection")
        listed = self.list_stored(
            info, namespace=namespace, label_selector=label_selector, field_selector=field_selector
        )
        items = []
        for obj in listed["items"]:
            md = obj["metadata"]
            try:
                deleted, _ = self.delete_object(
                    info,
                    md["name"],
                    namespace=md.get("namespace"),
                    propagation_policy=propagation_policy,
                    grace_period_seconds=grace_period_seconds,
                    dry_run=dry_run,
                )
            except ApiError as error:
                if error.code != 404:
                    raise
                continue
            items.append(deep_copy(deleted))
        listed["items"] = items
        listed["metadata"] = {"resourceVersion": str(self.store.revision)}
        return listed

    def _remove(self, info: ResourceInfo, obj: Obj) -> None:
        """Remove the object for good, then let its dependents and owners react."""
        final = dict(obj)
        final["metadata"] = dict(obj["metadata"])
        self.store.commit(info.key, DELETED, final)
        md = final["metadata"]
        if info.key == _CRD_KEY:
            self._unserve_crd(final)
        if info.key == _POD_KEY:
            self.logs.drop(md.get("namespace", ""), md["name"])
        self._collect_dependents(md.get("uid", ""))
        self._owners_may_finish(final)
        ns = md.get("namespace")
        if ns:
            namespace = self.store.get(_NS_KEY, "", ns)
            if namespace is not None and namespace["metadata"].get("deletionTimestamp"):
                self._finish_namespace(ns)

    def _owner_of(self, ref: Obj, namespace: str) -> tuple[ResourceInfo, Obj] | None:
        api_version = ref.get("apiVersion", "")
        group, _, version = api_version.rpartition("/")
        info = self.registry.by_gvk(group, version, ref.get("kind", ""))
        if info is None:
            return None
        owner = self.store.get(info.key, namespace if info.namespaced else "", ref.get("name", ""))
        if owner is None or owner["metadata"].get("uid") != ref.get("uid"):
            return None
        return info, owner

    def _collect_if_orphaned(self, info: ResourceInfo, obj: Obj) -> None:
        """Garbage-collect an object created with owner references to owners that are all
        gone (an owner deleted while its controller was still creating dependents).

        References to kinds the server does not serve are left alone, as the real garbage
        collector leaves what it cannot resolve.
        """
        md = obj["metadata"]
        refs = md.get("ownerReferences") or []
        if not refs:
            return
        ns = md.get("namespace", "")
        for ref in refs:
            group, _, version = str(ref.get("apiVersion", "")).rpartition("/")
            if self.registry.by_gvk(group, version, ref.get("kind", "")) is None:
                return
            if self._owner_of(ref, ns) is not None:
                return
        self.delete_object(info, md["name"], namespace=ns or None)

    def _info_for_key(self, key: tuple[str, str]) -> ResourceInfo | None:
        group, plural = key
        for version in self.registry.versions_of(group):
            info = self.registry.lookup(group, version, plural)
            if info is not None:
                return info
        return None

    def _collect_dependents(self, owner_uid: str) -> None:
        """Background garbage collection: dependents whose owners are all gone go too."""
        for key, ns, name in self.store.dependents(owner_uid):
            info = self._info_for_key(key)
            dep = self.store.get(key, ns, name)
            if info is None or dep is None:
                continue
            refs = dep["metadata"].get("ownerReferences") or []
            alive = [r for r in refs if self._owner_of(r, ns) is not None]
            if alive:
                new = deep_copy(dep)
                new["metadata"]["ownerReferences"] = alive
                self.store.commit(key, MODIFIED, new)
            elif not dep["metadata"].get("deletionTimestamp"):
                self.delete_object(info, name, namespace=ns or None)

    def _run_deletion_finalizers(self, info: ResourceInfo, obj: Obj) -> None:
        """The garbage collector's share of ``orphan`` and ``foregroundDeletion``."""
        md = obj["metadata"]
        finalizers = md.get("finalizers") or []
        uid = md.get("uid", "")
        if "orphan" in finalizers:
            for key, ns, name in self.store.dependents(uid):
                dep = self.store.get(key, ns, name)
                if dep is None:
                    continue
                new = deep_copy(dep)
                refs = [
                    r for r in new["metadata"].get("ownerReferences") or [] if r.get("uid") != uid
                ]
                if refs:
                    new["metadata"]["ownerReferences"] = refs
                else:
                    new["metadata"].pop("ownerReferences", None)
                self.store.commit(key, MODIFIED, new)
            self._drop_finalizer(info, md.get("namespace", ""), md["name"], "orphan")
        elif "foregroundDeletion" in finalizers:
            for key, ns, name in self.store.dependents(uid):
                dep_info = self._info_for_key(key)
                dep = self.store.get(key, ns, name)
                if dep_info is None or dep is None or dep["metadata"].get("deletionTimestamp"):
                    continue
                self.delete_object(
                    dep_info, name, namespace=ns or None, propagation_policy="Foreground"
                )
            self._owners_may_finish(None, owner=(info, md.get("namespace", ""), md["name"]))

    def _owners_may_finish(
        self, removed: Obj | None, owner: tuple[ResourceInfo, str, str] | None = None
    ) -> None:
        """An owner in foreground deletion finishes once its last dependent is gone."""
        candidates: list[tuple[ResourceInfo, str, str]] = []
        if owner is not None:
            candidates.append(owner)
        if removed is not None:
            ns = removed["metadata"].get("namespace", "")
            for ref in removed["metadata"].get("ownerReferences") or []:
                found = self._owner_of(ref, ns)
                if found is not None:
                    info, obj = found
                    candidates.append(
                        (info, obj["metadata"].get("namespace", ""), obj["metadata"]["name"])
                    )
        for info, ns, name in candidates:
            obj = self.store.get(info.key, ns, name)
            if obj is None:
                continue
            md = obj["metadata"]
            if not md.get("deletionTimestamp") or "foregroundDeletion" not in (
                md.get("finalizers") or []
            ):
                continue
            if not self.store.dependents(md.get("uid", "")):
                self._drop_finalizer(info, ns, name, "foregroundDeletion")

    def _drop_finalizer(self, info: ResourceInfo, ns: str, name: str, finalizer: str) -> None:
        obj = self.store.get(info.key, ns, name)
        if obj is None:
            return
        new = deep_copy(obj)
        new["metadata"]["finalizers"] = [
            f for f in new["metadata"].get("finalizers") or [] if f != finalizer
        ]
        if not new["metadata"]["finalizers"]:
            del new["metadata"]["finalizers"]
            if self._may_remove(info, new):
                self._remove(info, new)
                return
        self.store.commit(info.key, MODIFIED, new)

    # ----------------------------------------------------------------- namespaces

    def _delete_namespace(self, ns_obj: Obj) -> tuple[Obj, bool]:
        name = ns_obj["metadata"]["name"]
        info = self.registry.require("", "v1", "namespaces")
        if not ns_obj["metadata"].get("deletionTimestamp"):
            new = deep_copy(ns_obj)
            new["metadata"]["deletionTimestamp"] = self.now()
            new["metadata"]["deletionGracePeriodSeconds"] = 0
            new.setdefault("status", {})["phase"] = "Terminating"
            self.store.commit(info.key, MODIFIED, new)
            for key in self.store.resource_keys():
                if key == _NS_KEY:
                    continue
                dep_info = self._info_for_key(key)
                if dep_info is None or not dep_info.namespaced:
                    continue
                for obj in list(self.store.objects(key, name)):
                    if obj["metadata"].get("deletionTimestamp"):
                        continue
                    try:
                        self.delete_object(dep_info, obj["metadata"]["name"], namespace=name)
                    except ApiError as error:
                        if error.code != 404:
                            raise
            self._finish_namespace(name)
        still = self.store.get(_NS_KEY, "", name)
        return (still or ns_obj), still is None

    def _finish_namespace(self, name: str) -> None:
        ns_obj = self.store.get(_NS_KEY, "", name)
        if ns_obj is None or not ns_obj["metadata"].get("deletionTimestamp"):
            return
        for key in self.store.resource_keys():
            if key != _NS_KEY and self.store.count(key, name):
                return
        spec_finalizers = (ns_obj.get("spec") or {}).get("finalizers") or []
        new = deep_copy(ns_obj)
        if spec_finalizers:
            new["spec"]["finalizers"] = []
        if new["metadata"].get("finalizers"):
            if spec_finalizers:
                self.store.commit(_NS_KEY, MODIFIED, new)
            return
        self._remove(self.registry.require("", "v1", "namespaces"), new)
