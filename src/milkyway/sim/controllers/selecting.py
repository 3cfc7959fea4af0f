"""Which Services or PodDisruptionBudgets select a pod, and which pods one selects, read
from informer indexes instead of a scan of the namespace.

The endpoints and disruption controllers ask both questions on every pod event. Scanning
the namespace made each event cost as much as the namespace is large: with a thousand
Applications in one namespace, each pod event tested a thousand budgets and a thousand
Services, and each budget's reconcile tested every pod; that was most of the simulated
control plane's time. Here a selector is filed under the equality part of its selector
(``matchLabels``, a Service's ``selector`` map): a pod finds the selectors of each key
set in its namespace with one lookup of its own values for those keys, and a selector
finds its pods in the smallest bucket of the pod label index among its pairs. Selectors
with no equality part are kept aside and tested against every pod, as before. Every
candidate is then tested with the full selector, so the answers are the scan's.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from milkyway.sim.controllers.informer import Informer
from milkyway.sim.controllers.objects import Obj, labels_of, namespace_of

POD_LABELS = "labels"
"""Pods by (namespace, label key, label value), one entry per label."""
SELECTS = "selects"
"""Selectors by (namespace, keys, values) of their equality part, or (namespace, None)."""
KEY_SETS = "selector-keys"
"""Selectors by (namespace, keys) of their equality part."""

Equality = Callable[[Obj], Mapping[str, str] | None]
"""The labels every pod a selector selects must carry; None when it has none to index."""


def match_labels(obj: Obj) -> Mapping[str, str] | None:
    """A ``metav1.LabelSelector`` in ``spec.selector`` (a PodDisruptionBudget's)."""
    selector = (obj.get("spec") or {}).get("selector")
    labels = selector.get("matchLabels") if isinstance(selector, Mapping) else None
    return _plain(labels)


def selector_map(obj: Obj) -> Mapping[str, str] | None:
    """A Service's plain ``spec.selector`` map."""
    return _plain((obj.get("spec") or {}).get("selector"))


def _plain(labels: Any) -> Mapping[str, str] | None:
    if not isinstance(labels, Mapping) or not labels:
        return None
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in labels.items()):
        return None
    return labels


class Selecting:
    """Indexes on a pod informer and a selector informer, and the two lookups."""

    def __init__(self, pods: Informer, selectors: Informer, equality: Equality) -> None:
        self.pods = pods
        self.selectors = selectors
        self.equality = equality
        if not pods.has_index(POD_LABELS):
            pods.add_index(POD_LABELS, _pod_labels)
        selectors.add_index(SELECTS, self._selects)
        selectors.add_index(KEY_SETS, self._key_sets)

    def _selects(self, obj: Obj) -> list[tuple[str, Any, Any]]:
        ns = namespace_of(obj)
        labels = self.equality(obj)
        if labels is None:
            return [(ns, None, None)]
        keys = tuple(sorted(labels))
        return [(ns, keys, tuple(labels[k] for k in keys))]

    def _key_sets(self, obj: Obj) -> list[tuple[str, tuple[str, ...]]]:
        labels = self.equality(obj)
        return [] if labels is None else [(namespace_of(obj), tuple(sorted(labels)))]

    def selectors_of(self, pod: Obj) -> list[Obj]:
        """The selectors that may select ``pod`` (a superset: test each)."""
        ns = namespace_of(pod)
        labels = labels_of(pod)
        found = list(self.selectors.by_index(SELECTS, (ns, None, None)))
        for space, keys in self.selectors.index_values(KEY_SETS):
            if space != ns or not all(k in labels for k in keys):
                continue
            found.extend(
                self.selectors.by_index(SELECTS, (ns, keys, tuple(labels[k] for k in keys)))
            )
        return found

    def pods_of(self, selector: Obj) -> list[Obj]:
        """The pods ``selector`` may select (a superset: test each)."""
        ns = namespace_of(selector)
        labels = self.equality(selector)
        if labels is None:
            return self.pods.by_index("ns", ns)
        narrowest = min(
            ((ns, k, v) for k, v in labels.items()),
            key=lambda value: self.pods.index_size(POD_LABELS, value),
        )
        return self.pods.by_index(POD_LABELS, narrowest)


def _pod_labels(pod: Obj) -> list[tuple[str, str, str]]:
    ns = namespace_of(pod)
    return [(ns, k, v) for k, v in labels_of(pod).items() if isinstance(v, str)]
