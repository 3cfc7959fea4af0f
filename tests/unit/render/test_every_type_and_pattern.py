"""Every type in every deploy pattern it supports renders manifests that kubernetes-validate
accepts in strict mode and that pass the security policy."""

from __future__ import annotations

import pytest

from milkyway.render import render_application, render_zone

from .conftest import TYPES, application, policy_violations, resolved, strict_errors

COMBINATIONS = [
    (name, workload) for name in sorted(TYPES) for workload in TYPES[name].spec.workloads
]
EXPECTED_KINDS = {
    "statefulset": {"ConfigMap", "Service", "PodDisruptionBudget", "StatefulSet"},
    "deployment": {"ConfigMap", "Service", "PodDisruptionBudget", "Deployment"},
    "deploymentset": {
        "ConfigMap",
        "Service",
        "PodDisruptionBudget",
        "PersistentVolumeClaim",
        "Deployment",
    },
    "pods": {
        "ConfigMap",
        "Service",
        "PodDisruptionBudget",
        "PersistentVolume",
        "PersistentVolumeClaim",
        "Pod",
    },
}


def _layout(type_name: str) -> list[tuple[str, int]]:
    """Two zones, sized within what the type allows (odd totals for quorum types)."""
    sizing = TYPES[type_name].spec.sizing
    if sizing.odd:
        return [("phx", 3), ("slc", 2)]
    if sizing.max < 4:
        return [("phx", 2), ("slc", 1)]
    return [("phx", 2), ("slc", 2)]


def test_all_four_patterns_are_covered() -> None:
    assert {workload for _, workload in COMBINATIONS} == set(EXPECTED_KINDS)


@pytest.mark.parametrize(
    ("type_name", "workload"), COMBINATIONS, ids=[f"{t}-{w}" for t, w in COMBINATIONS]
)
def test_manifests_are_valid_and_secure(type_name: str, workload: str) -> None:
    app = resolved(application(type_name, workload, _layout(type_name)))
    rendered = render_application(app)
    assert rendered
    for (component, _zone), manifests in rendered.items():
        ctype = app.components[component].type
        for manifest in manifests:
            assert strict_errors(manifest) is None, strict_errors(manifest)
            assert policy_violations(manifest, ctype) == []
    mine = render_zone(app, f"{type_name}1", "phx")
    assert {m["kind"] for m in mine} == EXPECTED_KINDS[workload]


def test_policy_check_catches_a_breach() -> None:
    app = resolved(application("zookeeper"))
    manifests = render_zone(app, "zookeeper1", "phx")
    statefulset = next(m for m in manifests if m["kind"] == "StatefulSet")
    pod = statefulset["spec"]["template"]["spec"]
    pod["containers"][0]["securityContext"]["allowPrivilegeEscalation"] = True
    pod["automountServiceAccountToken"] = True
    pod["securityContext"]["runAsUser"] = 0
    problems = policy_violations(statefulset, app.components["zookeeper1"].type)
    assert len(problems) == 3, problems


def test_strict_validation_catches_an_unknown_field() -> None:
    app = resolved(application("zookeeper"))
    service = next(m for m in render_zone(app, "zookeeper1", "phx") if m["kind"] == "Service")
    service["spec"]["clusterIp"] = "None"
    assert strict_errors(service) is not None
