"""The planner: a pure diff of WISB (rendered manifests) and WIRI (observations) into flows.

``plan()`` is called on every reconcile of one Application with everything it needs as
plain data and answers which flows to start now, why nothing else starts, the status to
write and when to look again. It never does I/O and never reads the clock (``now`` is an
argument), so it is deterministic and property-tested.

Rules, per component, in order of precedence (the first that applies wins):

1. **decommission** when the Application is being deleted: components in reverse
   dependency order (a component goes once nothing that uses it has objects left);
2. **provision** when a component has no workload anywhere yet, once every component it
   uses is Ready with no flow still changing it; zones of a component, and independent
   components, go in parallel; zones missing other objects (a deleted ConfigMap) are
   re-applied the same way;
3. **replace-member** for a member on a dead node or a failed disk, or named in the
   Application's ``milkyway.ebay.com/replace`` annotation (``pod@RFC3339`` items: a pod
   created before that time is replaced once; timestamps have one-second precision);
4. **remediate** a member that is missing (at once: when its controller brings it back
   first, the flow finds it Ready and does nothing) or not Ready for longer than the
   threshold (60 s, or the Application's ``milkyway.ebay.com/remediate-after``
   annotation, in seconds);
5. **scale-out** (a zone grows or a zone is added: grow first, then reconfigure the
   others) / **scale-in** (highest ordinals or identities first, their volumes deleted);
6. **rolling-upgrade** (a member runs another version) / **config-update** (a member runs
   another restart hash: rolling restart; only hot-reloadable params changed: apply the
   ConfigMap and signal members, no restart);
7. **restart** asked for in the ``milkyway.ebay.com/restart`` annotation
   (``component@RFC3339`` items): members created before that time restart once.

One mutating flow per component at a time: while a component has an unfinished flow
nothing else starts for it, and whatever changed meanwhile is planned from the new state
when that flow ends (changes are coalesced, never queued one by one). A rolling flow
starts only while the disruption policy leaves room given the members already down.
"""

from __future__ import annotations

from milkyway.operator.planner.contract import (
    REMEDIATE_AFTER,
    REMEDIATE_AFTER_ANNOTATION,
    REPLACE_ANNOTATION,
    RESTART_ANNOTATION,
    FlowRequest,
    Plan,
    RunningFlow,
    max_unavailable,
    mutex_key,
)
from milkyway.operator.planner.desired import ZoneWant, zone_want
from milkyway.operator.planner.rules import plan

__all__ = [
    "REMEDIATE_AFTER",
    "REMEDIATE_AFTER_ANNOTATION",
    "REPLACE_ANNOTATION",
    "RESTART_ANNOTATION",
    "FlowRequest",
    "Plan",
    "RunningFlow",
    "ZoneWant",
    "max_unavailable",
    "mutex_key",
    "plan",
    "zone_want",
]
