"""What decides how a flow may start, read from watches instead of on every start: the
ApprovalPolicies (every namespace) and the ITSM webhook Secret of change records.

Reading them live cost three API round trips before every FlowRun (two lists of policies,
one get of the Secret), about as much as the rest of the reaction to a change together.
An informer keeps each in memory instead, and the operator decides from that copy.

The consistency kept: a flow is decided with the policies and webhook the operator's
watch had delivered when the flow was decided. A change applies to every flow decided
after its watch event arrived, which follows the write by the watch's delivery time
(milliseconds); a flow decided in that window is decided on the previous version, just
as a flow whose live read came a moment before the write always was. While a watch is
not synced (before its first listing, and from a failed watch until the next listing
succeeds: the copy may then miss changes of unknown age), every read goes live to the
API server as before, so a copy is never used when it might be stale by more than the
delivery of one event. A policy or Secret that is invalid stops the flow from starting
with the same message either way.

Only the Secret the webhook reads is kept whole; the other Secrets of its namespace (the
member clusters' kubeconfigs among them) are kept as their name only, so the watch adds
no copy of their contents to the operator's memory.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lightkube import AsyncClient
from lightkube.resources.core_v1 import Secret

from milkyway.kube.informer import Informer
from milkyway.kube.reachability import ReachabilityLog
from milkyway.kube.resources import APPROVAL_POLICY, as_dict
from milkyway.model.approval_policy import CLUSTER_NAMESPACE, ApprovalPolicy
from milkyway.operator import change_records
from milkyway.operator.approval_gates import read_policies, validated_policy


def _itsm_only(obj: Any) -> dict[str, Any]:
    data = as_dict(obj)
    metadata = data.get("metadata") or {}
    if metadata.get("name") == change_records.SECRET_NAME:
        return data
    return {"metadata": {k: metadata.get(k) for k in ("name", "namespace", "resourceVersion")}}


class WatchedConfig:
    """The policies and the webhook from two informers (run :meth:`informers`' ``run``),
    falling back to live reads while an informer is not synced."""

    def __init__(self, client: AsyncClient, reachability: ReachabilityLog | None = None) -> None:
        self._client = client
        self.policies = Informer(
            client,
            APPROVAL_POLICY,
            on_change=self._policy_changed,
            transform=as_dict,
            reachability=reachability,
        )
        self.secrets = Informer(
            client,
            Secret,
            namespace=change_records.SECRET_NAMESPACE,
            on_change=self._secret_changed,
            transform=_itsm_only,
            reachability=reachability,
        )
        self._validated: dict[tuple[str, str], tuple[str | None, ApprovalPolicy]] = {}
        self._itsm: tuple[str | None, change_records.ItsmConfig | ValueError] | None = None
        self.live_reads = 0
        """Reads that went to the API server because a watch was not synced."""

    @property
    def informers(self) -> tuple[Informer, Informer]:
        return (self.policies, self.secrets)

    def _policy_changed(self, event: str, obj: Any) -> None:
        metadata = obj.get("metadata") or {}
        self._validated.pop((metadata.get("namespace") or "", metadata.get("name")), None)

    def _secret_changed(self, event: str, obj: Any) -> None:
        if (obj.get("metadata") or {}).get("name") == change_records.SECRET_NAME:
            self._itsm = None

    async def policies_of(self, namespace: str) -> list[ApprovalPolicy]:
        """The policies of ``namespace`` and the cluster-wide ones, validated (each one
        once per version); :class:`~milkyway.flows.dsl.FlowError` if one is invalid."""
        if not self.policies.synced.is_set():
            self.live_reads += 1
            return await read_policies(self._client, namespace)
        found = []
        for where in dict.fromkeys((CLUSTER_NAMESPACE, namespace)):
            for key, raw in sorted(self.policies.cache.items()):
                if key[0] == where:
                    found.append(self._policy(key, raw))
        return found

    def _policy(self, key: tuple[str, str], raw: Mapping[str, Any]) -> ApprovalPolicy:
        version = (raw.get("metadata") or {}).get("resourceVersion")
        known = self._validated.get(key)
        if known is not None and known[0] == version:
            return known[1]
        policy = validated_policy(raw)
        self._validated[key] = (version, policy)
        return policy

    async def itsm(self) -> change_records.ItsmConfig | None:
        """The ITSM webhook, ``None`` when no Secret configures one; :class:`ValueError`
        when the Secret is unusable (as :func:`change_records.read_config`)."""
        if not self.secrets.synced.is_set():
            self.live_reads += 1
            return await change_records.read_config(self._client)
        where = (change_records.SECRET_NAMESPACE, change_records.SECRET_NAME)
        secret = self.secrets.cache.get(where)
        if secret is None:
            return None
        version = (secret.get("metadata") or {}).get("resourceVersion")
        if self._itsm is None or self._itsm[0] != version:
            try:
                parsed: change_records.ItsmConfig | ValueError = change_records.config_from_secret(
                    secret
                )
            except ValueError as exc:
                parsed = exc
            self._itsm = (version, parsed)
        found = self._itsm[1]
        if isinstance(found, ValueError):
            raise ValueError(str(found))
        return found
