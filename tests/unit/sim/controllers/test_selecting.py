"""The selector indexes answer what a scan of the namespace answers, as pods and selectors
come, change their labels and go."""

from __future__ import annotations

import random
from typing import Any

from milkyway.sim.controllers import disruption, endpoints
from milkyway.sim.controllers.informer import Informer
from milkyway.sim.controllers.objects import key_of, namespace_of
from milkyway.sim.controllers.selecting import Selecting, match_labels, selector_map

KEYS = ["app", "tier", "zone"]
VALUES = ["a", "b", "c"]


def _labels(rng: random.Random) -> dict[str, str]:
    return {k: rng.choice(VALUES) for k in KEYS if rng.random() < 0.7}


def _pod(rng: random.Random, name: str) -> dict[str, Any]:
    return {
        "kind": "Pod",
        "metadata": {"name": name, "namespace": rng.choice(["n1", "n2"]), "labels": _labels(rng)},
    }


def _pdb(rng: random.Random, name: str) -> dict[str, Any]:
    selector: dict[str, Any] | None = {}
    shape = rng.random()
    if shape < 0.1:
        selector = None  # selects nothing
    elif shape < 0.2:
        selector = {}  # selects every pod of the namespace
    else:
        selector = {"matchLabels": _labels(rng)}
        if rng.random() < 0.3:
            selector["matchExpressions"] = [
                {"key": rng.choice(KEYS), "operator": "NotIn", "values": [rng.choice(VALUES)]}
            ]
    return {
        "kind": "PodDisruptionBudget",
        "metadata": {"name": name, "namespace": rng.choice(["n1", "n2"])},
        "spec": {"selector": selector},
    }


def _service(rng: random.Random, name: str) -> dict[str, Any]:
    return {
        "kind": "Service",
        "metadata": {"name": name, "namespace": rng.choice(["n1", "n2"])},
        "spec": {"selector": _labels(rng) if rng.random() < 0.9 else None},
    }


def _informer(resource: str) -> Informer:
    informer = Informer(resource)
    informer.add_index("ns", lambda obj: [namespace_of(obj)])
    return informer


def _check(seed: int, make: Any, equality: Any, selects: Any) -> None:
    rng = random.Random(seed)
    pods, selectors = _informer("v1/pods"), _informer("selectors")
    selecting = Selecting(pods, selectors, equality)
    for step in range(400):
        roll = rng.random()
        if roll < 0.4:
            pods.apply("ADDED", _pod(rng, f"p{rng.randrange(40)}"))
        elif roll < 0.5 and pods.objects:
            ns, name = rng.choice(sorted(pods.objects))
            pods.apply("DELETED", {"metadata": {"name": name, "namespace": ns}})
        elif roll < 0.85:
            selectors.apply("ADDED", make(rng, f"s{rng.randrange(15)}"))
        elif selectors.objects:
            ns, name = rng.choice(sorted(selectors.objects))
            selectors.apply("DELETED", {"metadata": {"name": name, "namespace": ns}})
        for pod in pods.objects.values():
            scanned = sorted(
                key_of(s) for s in selectors.by_index("ns", namespace_of(pod)) if selects(s, pod)
            )
            indexed = sorted(key_of(s) for s in selecting.selectors_of(pod) if selects(s, pod))
            assert indexed == scanned, (seed, step, pod)
        for selector in selectors.objects.values():
            scanned = sorted(
                key_of(p)
                for p in pods.by_index("ns", namespace_of(selector))
                if selects(selector, p)
            )
            indexed = sorted(key_of(p) for p in selecting.pods_of(selector) if selects(selector, p))
            assert indexed == scanned, (seed, step, selector)


def test_budgets_found_from_the_index_are_the_budgets_a_scan_finds() -> None:
    for seed in range(5):
        _check(seed, _pdb, match_labels, disruption.selects)


def test_services_found_from_the_index_are_the_services_a_scan_finds() -> None:
    for seed in range(5):
        _check(seed, _service, selector_map, endpoints.selects)
